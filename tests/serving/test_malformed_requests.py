"""Malformed requests are the caller's error: INVALID_ARGUMENT naming what is wrong, never INTERNAL, server unharmed."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from tests.serving import savedmodels
from tests.serving.requests import predict_request
from vswin.serving.model_config import single_model_config

pytestmark = pytest.mark.slow


@pytest.fixture()
def server(start_server, model_base):
    return start_server(single_model_config("tiny", model_base))


def frames_proto(**fields) -> tensor_pb2.TensorProto:
    shape = fields.pop("shape", [1, *savedmodels.CLIP])
    proto = tensor_pb2.TensorProto(
        dtype=fields.pop("dtype", types_pb2.DT_UINT8),
        tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in shape]),
    )
    for name, value in fields.items():
        if isinstance(value, list):
            getattr(proto, name).extend(value)
        else:
            setattr(proto, name, value)
    return proto


def request_with(proto: tensor_pb2.TensorProto, signature: str = "features_graph"):
    request = predict_request("tiny", {}, signature)
    request.inputs["frames"].CopyFrom(proto)
    return request


CLIP_VALUES = int(np.prod(savedmodels.CLIP))

MALFORMED = {
    "uint8-int-val-out-of-range": (frames_proto(int_val=[300] * CLIP_VALUES), "out of range for uint8"),
    "uint8-int-val-negative": (frames_proto(int_val=[-1] * CLIP_VALUES), "out of range for uint8"),
    "dt-resource": (frames_proto(dtype=types_pb2.DT_RESOURCE), "DT_RESOURCE, which a request cannot carry"),
    "dt-variant": (frames_proto(dtype=types_pb2.DT_VARIANT), "DT_VARIANT, which a request cannot carry"),
    "dt-invalid": (frames_proto(dtype=types_pb2.DT_INVALID), "DT_INVALID, which a request cannot carry"),
    "reference-dtype": (frames_proto(dtype=types_pb2.DT_FLOAT_REF), "which a request cannot carry"),
    "content-too-short": (frames_proto(tensor_content=b"\x00" * 10), "tensor_content has 10 bytes"),
    "negative-dimension": (frames_proto(shape=[-2, *savedmodels.CLIP]), "negative dimension"),
    "unknown-rank": (tensor_pb2.TensorProto(dtype=types_pb2.DT_UINT8,
                                            tensor_shape=tensor_shape_pb2.TensorShapeProto(unknown_rank=True)),
                     "unknown rank"),
    "too-many-values": (frames_proto(int_val=[1] * (CLIP_VALUES + 1)), "not a valid TensorProto"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_tensor_is_invalid_argument_and_the_server_keeps_serving(server, stubs, case):
    proto, fragment = MALFORMED[case]
    predict, _ = stubs(server)
    with pytest.raises(grpc.RpcError) as caught:
        predict.Predict(request_with(proto), timeout=60)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert fragment in caught.value.details()
    assert "'frames'" in caught.value.details()
    ok = predict.Predict(predict_request("tiny", {"frames": savedmodels.clips(1)}, "features_graph"), timeout=60)
    assert len(ok.outputs["features"].float_val) == savedmodels.FEATURES


@pytest.mark.parametrize("signature", ["__saved_model_init_op", "__anything_internal"])
def test_internal_signatures_cannot_be_called(server, stubs, signature):
    predict, _ = stubs(server)
    with pytest.raises(grpc.RpcError) as caught:
        predict.Predict(predict_request("tiny", {"frames": savedmodels.clips(1)}, signature), timeout=60)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert signature in caught.value.details() and "features_graph" in caught.value.details()


def test_typed_field_values_within_range_still_decode(server, stubs):
    """int_val for uint8 is what some clients send; valid values keep working, short lists repeat the last value."""
    predict, _ = stubs(server)
    frames = savedmodels.clips(1)
    by_field = predict.Predict(request_with(frames_proto(int_val=frames.ravel().tolist())), timeout=60)
    by_content = predict.Predict(predict_request("tiny", {"frames": frames}, "features_graph"), timeout=60)
    assert list(by_field.outputs["features"].float_val) == list(by_content.outputs["features"].float_val)
    filled = predict.Predict(request_with(frames_proto(int_val=[7])), timeout=60)
    constant = predict.Predict(predict_request("tiny", {"frames": np.full((1, *savedmodels.CLIP), 7, np.uint8)},
                                               "features_graph"), timeout=60)  # fmt: skip
    assert list(filled.outputs["features"].float_val) == list(constant.outputs["features"].float_val)
