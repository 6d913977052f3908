"""Request size limits without batching, and deadlines that stop the work (issue 12, defect 4)."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from tests.serving import savedmodels
from tests.serving.requests import config_for, predict_request, wait_for
from vswin import contract
from vswin.cli import build_parser
from vswin.serving.main import options_from_args
from vswin.serving.model_config import single_model_config

pytestmark = pytest.mark.slow

FOREVER = 10**12  # loop iterations of the spinner: hours


def rpc_error(call, request, timeout=60.0) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=timeout)
    return caught.value


def spin_request(iterations: int):
    return predict_request("spinner", {"n": np.array([iterations], np.int64)}, "spin")


def test_limit_flags_default_to_the_batch_plan_and_256_mib():
    options = options_from_args(build_parser().parse_args(["serve", "--model_base_path=/m"]))
    assert (options.max_request_batch_size, options.max_request_bytes) == (8, 256 * 2**20)
    options = options_from_args(build_parser().parse_args(
        ["serve", "--model_base_path=/m", "--max_request_batch_size=2", "--max_request_bytes=0"]))  # fmt: skip
    assert (options.max_request_batch_size, options.max_request_bytes) == (2, 0)


def test_more_rows_than_the_limit_without_batching_is_invalid_argument_naming_the_flag(start_server, stubs, model_base):
    predict, _ = stubs(start_server(single_model_config("tiny", model_base)))
    error = rpc_error(predict.Predict, predict_request("tiny", {"frames": savedmodels.clips(9)}, "features_graph"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "(--max_request_batch_size of a server without batching; input 'frames')" in error.details()
    assert contract.parse_batch_too_large(error.details()) == (9, 8)  # what clients halve on, as for a batcher
    ok = predict.Predict(predict_request("tiny", {"frames": savedmodels.clips(8)}, "features_graph"), timeout=60)
    assert len(ok.outputs["features"].float_val) == 8 * savedmodels.FEATURES


def test_row_limit_is_configurable_and_zero_turns_it_off(start_server, stubs, model_base):
    two = stubs(start_server(single_model_config("tiny", model_base), max_request_batch_size=2))[0]
    error = rpc_error(two.Predict, predict_request("tiny", {"frames": savedmodels.clips(3)}, "features_graph"))
    assert "Task size 3 is larger than maximum input batch size 2 (--max_request_batch_size" in error.details()
    unlimited = stubs(start_server(single_model_config("tiny", model_base), max_request_batch_size=0))[0]
    ok = unlimited.Predict(predict_request("tiny", {"frames": savedmodels.clips(9)}, "features_graph"), timeout=60)
    assert len(ok.outputs["features"].float_val) == 9 * savedmodels.FEATURES


def test_more_bytes_than_the_limit_is_resource_exhausted_naming_the_flag(start_server, stubs, model_base):
    predict, _ = stubs(start_server(single_model_config("tiny", model_base), max_request_bytes=300_000))
    error = rpc_error(predict.Predict, predict_request("tiny", {"frames": savedmodels.clips(2)}, "features_graph"))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "decode to 393216 bytes, more than --max_request_bytes 300000" in error.details()
    ok = predict.Predict(predict_request("tiny", {"frames": savedmodels.clips(1)}, "features_graph"), timeout=60)
    assert len(ok.outputs["features"].float_val) == savedmodels.FEATURES


def test_a_huge_declared_shape_is_refused_before_anything_is_allocated(start_server, stubs, model_base):
    """One int_val broadcast to 10**7 clips (2 TB): refused on the declared shape, not by running out of memory."""
    predict, _ = stubs(start_server(single_model_config("tiny", model_base), max_request_batch_size=0))
    request = predict_request("tiny", {}, "features_graph")
    shape = tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in (10**7, *savedmodels.CLIP)]
    )
    request.inputs["frames"].CopyFrom(tensor_pb2.TensorProto(dtype=types_pb2.DT_UINT8, tensor_shape=shape, int_val=[0]))
    error = rpc_error(predict.Predict, request)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "more than --max_request_bytes" in error.details()


def test_a_deadline_that_passes_while_running_stops_the_computation(start_server, stubs, spinner_base):
    server = start_server(config_for(spinner_base, name="spinner"))
    predict, _ = stubs(server)
    error = rpc_error(predict.Predict, spin_request(FOREVER), timeout=2.0)
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The loop would run for hours: the request leaving the server means its Session step was cancelled.
    wait_for(lambda: not server.in_flight.snapshot(), timeout=120, what="the cancelled computation to stop")
    assert predict.Predict(spin_request(10), timeout=60).outputs["x"].float_val


def test_a_request_whose_deadline_passed_while_queued_is_not_run(start_server, stubs, spinner_base, monkeypatch):
    from vswin.serving.servable import Servable

    server = start_server(config_for(spinner_base, name="spinner"), grpc_max_threads=1)
    predict, _ = stubs(server)
    ran: list[int] = []
    original = Servable.run
    monkeypatch.setattr(Servable, "run", lambda self, name, inputs, *a, **k: ran.append(int(inputs["n"][0]))
                        or original(self, name, inputs, *a, **k))  # fmt: skip
    blocker = predict.Predict.future(spin_request(FOREVER), timeout=5.0)  # holds the only worker for 5 s
    wait_for(lambda: server.in_flight.snapshot(), timeout=60, what="the first request to run")
    queued = rpc_error(predict.Predict, spin_request(7), timeout=1.0)
    assert queued.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    with pytest.raises(grpc.RpcError):
        blocker.result()
    wait_for(lambda: not server.in_flight.snapshot(), timeout=120, what="the worker to be free")
    assert ran == [FOREVER]  # the queued request never reached the model


def test_the_client_learns_the_row_limit_and_splits_its_requests(tmp_path):
    """The shared client core halves on the batcher's wording; the row limit of a server without batching uses it."""
    from tests.tiny_exports import CLIP, TinyServer, expected_features, save_tiny_export
    from vswin.client import VideoSwinClient

    save_tiny_export(tmp_path / "fake" / "1")
    server = TinyServer(single_model_config("fake", tmp_path / "fake"), max_request_batch_size=2)
    try:
        views = np.random.default_rng(3).integers(0, 256, size=(7, *CLIP, 3), dtype=np.uint8)
        with VideoSwinClient(server.target, "fake") as client:
            features = client.features(views)
    finally:
        server.stop()
    np.testing.assert_allclose(features, expected_features(views), rtol=0, atol=1e-6)
