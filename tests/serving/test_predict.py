"""Predict and GetModelMetadata over gRPC against an in-process server, with tensorflow_serving.apis stubs."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.saved_model import loader_impl
from tensorflow_serving.apis import classification_pb2, get_model_metadata_pb2

from tests.serving import savedmodels
from tests.serving.requests import Aborted, FakeContext, metadata_request, predict_request
from vswin.serving.model_config import single_model_config

pytestmark = pytest.mark.slow


@pytest.fixture()
def server(start_server, model_base):
    return start_server(single_model_config("tiny", model_base), xla_cpu_compilation_enabled=True)


def reference(model_dir, signature: str, **inputs) -> dict[str, np.ndarray]:
    function = tf.saved_model.load(str(model_dir)).signatures[signature]
    return {key: value.numpy() for key, value in function(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


@pytest.mark.parametrize("signature", ["", "serving_default", "features_graph"])
def test_features_round_trip_equals_in_process_signature(server, stubs, model_base, signature):
    predict, _ = stubs(server)
    frames = savedmodels.clips(3)
    response = predict.Predict(predict_request("tiny", {"frames": frames}, signature=signature), timeout=60)
    got = tf.make_ndarray(response.outputs["features"])
    want = reference(model_base / "1", signature or "serving_default", frames=frames)["features"]
    assert got.dtype == np.float32 and got.shape == (3, savedmodels.FEATURES)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    assert response.model_spec.name == "tiny"
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == (signature or "serving_default")


def test_outputs_use_typed_fields_unless_tensor_content_is_asked_for(start_server, stubs, model_base):
    frames = savedmodels.clips(1)
    default = start_server(single_model_config("tiny", model_base))
    content = start_server(single_model_config("tiny", model_base), enable_serialization_as_tensor_content=True)
    by_field = stubs(default)[0].Predict(predict_request("tiny", {"frames": frames}, "features_graph"), timeout=60)
    by_content = stubs(content)[0].Predict(predict_request("tiny", {"frames": frames}, "features_graph"), timeout=60)
    assert len(by_field.outputs["features"].float_val) == savedmodels.FEATURES
    assert not by_field.outputs["features"].tensor_content
    assert len(by_content.outputs["features"].tensor_content) == 4 * savedmodels.FEATURES
    assert not by_content.outputs["features"].float_val
    np.testing.assert_array_equal(
        tf.make_ndarray(by_field.outputs["features"]), tf.make_ndarray(by_content.outputs["features"])
    )


def test_output_filter_returns_only_the_named_outputs(server, stubs, model_base):
    predict, _ = stubs(server)
    frames = savedmodels.clips(2)
    full = predict.Predict(predict_request("tiny", {"frames": frames}, "classify"), timeout=60)
    filtered = predict.Predict(predict_request("tiny", {"frames": frames}, "classify", output_filter=("logits",)), timeout=60)
    assert set(full.outputs) == {"features", "logits", "probabilities"}
    assert set(filtered.outputs) == {"logits"}
    np.testing.assert_allclose(
        tf.make_ndarray(filtered.outputs["logits"]),
        reference(model_base / "1", "classify", frames=frames)["logits"], atol=1e-4, rtol=0,
    )  # fmt: skip


def test_float_input_signature_round_trip(server, stubs, model_base):
    predict, _ = stubs(server)
    clips = savedmodels.clips(2).astype(np.float32)
    response = predict.Predict(predict_request("tiny", {"clips": clips}, "features_float"), timeout=60)
    np.testing.assert_allclose(
        tf.make_ndarray(response.outputs["features"]),
        reference(model_base / "1", "features_float", clips=clips)["features"], atol=1e-4, rtol=0,
    )  # fmt: skip


def test_metadata_is_the_savedmodels_signature_def_map(server, stubs, model_base):
    predict, _ = stubs(server)
    response = predict.GetModelMetadata(metadata_request("tiny"), timeout=30)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    saved = loader_impl.parse_saved_model(str(model_base / "1")).meta_graphs[0].signature_def
    assert dict(signatures.signature_def) == dict(saved)
    assert {"serving_default", "features_graph", "feature_map", "classify"} <= set(signatures.signature_def)
    frames = signatures.signature_def["serving_default"].inputs["frames"]
    assert tf.as_dtype(frames.dtype) == tf.uint8
    assert [d.size for d in frames.tensor_shape.dim] == [-1, *savedmodels.CLIP]
    assert response.model_spec.name == "tiny" and response.model_spec.version.value == 1


def code_of(call, *args, **kwargs) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, timeout=30, **kwargs)
    return caught.value.code(), caught.value.details()


@pytest.mark.parametrize(
    ("inputs", "signature", "code", "fragment"),
    [
        ({"frames": savedmodels.clips(1)}, "nope", grpc.StatusCode.FAILED_PRECONDITION, 'signature key "nope"'),
        ({"images": savedmodels.clips(1)}, "", grpc.StatusCode.INVALID_ARGUMENT, "frames: uint8 [-1,16,64,64,3]"),
        ({"frames": savedmodels.clips(1).astype(np.float32)}, "", grpc.StatusCode.INVALID_ARGUMENT,
         "input 'frames' expects uint8 [-1,16,64,64,3], got float32 [1,16,64,64,3]"),
        ({"frames": savedmodels.clips(1)[0]}, "", grpc.StatusCode.INVALID_ARGUMENT,
         "expects uint8 [-1,16,64,64,3], got uint8 [16,64,64,3]"),
        ({"frames": np.zeros((1, 8, 64, 64, 3), np.uint8)}, "", grpc.StatusCode.INVALID_ARGUMENT,
         "got uint8 [1,8,64,64,3]"),
        ({"frames": savedmodels.clips(1), "extra": np.zeros(1, np.float32)}, "", grpc.StatusCode.INVALID_ARGUMENT,
         "sent extra: ['extra']"),
    ],
    ids=["signature", "input-name", "dtype", "rank", "shape", "extra-input"],
)  # fmt: skip
def test_bad_requests_get_tf_servings_codes_and_the_server_keeps_serving(
    server, stubs, inputs, signature, code, fragment
):
    predict, _ = stubs(server)
    got_code, details = code_of(predict.Predict, predict_request("tiny", inputs, signature=signature))
    assert got_code == code
    assert fragment in details
    ok = predict.Predict(predict_request("tiny", {"frames": savedmodels.clips(1)}, "features_graph"), timeout=60)
    assert ok.outputs["features"].tensor_shape.dim[1].size == savedmodels.FEATURES


def test_unknown_output_filter_is_invalid_argument_naming_the_outputs(server, stubs):
    predict, _ = stubs(server)
    request = predict_request("tiny", {"frames": savedmodels.clips(1)}, "classify", output_filter=("scores",))
    code, details = code_of(predict.Predict, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "scores" in details and "['features', 'logits', 'probabilities']" in details


@pytest.mark.parametrize(
    ("spec", "code", "message"),
    [
        # TF Serving's wording, then what this server does serve.
        ({"model": "nope"}, grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(nope); models served: tiny"),
        ({"model": "tiny", "version": 9}, grpc.StatusCode.NOT_FOUND,
         "Servable not found for request: Specific(tiny, 9); model tiny: version 1 AVAILABLE"),
        # TF Serving's ServerCore::GetModelVersionForLabel answers INVALID_ARGUMENT for an unknown label.
        ({"model": "tiny", "label": "stable"}, grpc.StatusCode.INVALID_ARGUMENT,
         "Unrecognized servable version label: stable"),
    ],
    ids=["model", "version", "label"],
)  # fmt: skip
def test_unknown_model_version_or_label(server, stubs, spec, code, message):
    predict, _ = stubs(server)
    request = predict_request(spec["model"], {"frames": savedmodels.clips(1)}, version=spec.get("version"),
                              label=spec.get("label", ""))  # fmt: skip
    assert code_of(predict.Predict, request) == (code, message)
    metadata = metadata_request(spec["model"], spec.get("version"), spec.get("label", ""))
    assert code_of(predict.GetModelMetadata, metadata) == (code, message)


def test_metadata_without_fields_or_with_unknown_field_is_invalid_argument(server, stubs):
    predict, _ = stubs(server)
    request = metadata_request("tiny")
    del request.metadata_field[:]
    assert code_of(predict.GetModelMetadata, request)[0] == grpc.StatusCode.INVALID_ARGUMENT
    request.metadata_field.append("tflite_model")
    assert code_of(predict.GetModelMetadata, request) == (
        grpc.StatusCode.INVALID_ARGUMENT, "Metadata field tflite_model is not supported",
    )  # fmt: skip


def test_rpcs_it_does_not_implement_answer_unimplemented(server, stubs):
    predict, _ = stubs(server)
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "tiny"
    assert code_of(predict.Classify, request)[0] == grpc.StatusCode.UNIMPLEMENTED


def test_request_over_the_message_limit_is_resource_exhausted(start_server, stubs, model_base):
    server = start_server(single_model_config("tiny", model_base), grpc_max_message_size=100_000)
    predict, _ = stubs(server)
    big = predict_request("tiny", {"frames": savedmodels.clips(1)}, "features_graph")  # ~196 kB
    assert big.ByteSize() > 100_000
    assert code_of(predict.Predict, big)[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    small = predict_request("tiny", {"frames": savedmodels.clips(1)[:, :, :32, :32]}, "features_graph")
    assert code_of(predict.Predict, small)[0] == grpc.StatusCode.INVALID_ARGUMENT  # reached the server


def test_xla_gpu_flag_also_enables_xla_on_cpu_as_in_tf_serving(start_server, stubs, model_base):
    server = start_server(single_model_config("tiny", model_base), xla_gpu_compilation_enabled=True)
    predict, _ = stubs(server)
    response = predict.Predict(predict_request("tiny", {"frames": savedmodels.clips(4)}), timeout=60)
    assert response.model_spec.signature_name == "serving_default"
    assert len(response.outputs["features"].float_val) == 4 * savedmodels.FEATURES


def test_jit_signature_without_xla_flags_fails_like_tf_serving(start_server, stubs, model_base):
    server = start_server(single_model_config("tiny", model_base))
    predict, _ = stubs(server)
    code, details = code_of(predict.Predict, predict_request("tiny", {"frames": savedmodels.clips(5)}))
    assert code == grpc.StatusCode.INTERNAL
    assert "XLA compilation disabled" in details
    ok = predict.Predict(predict_request("tiny", {"frames": savedmodels.clips(5)}, "features_graph"), timeout=60)
    assert len(ok.outputs["features"].float_val) == 5 * savedmodels.FEATURES


def test_request_whose_deadline_has_passed_is_deadline_exceeded_without_running(server, monkeypatch):
    from vswin.serving.prediction_service import PredictionService
    from vswin.serving.servable import Servable

    runs: list[str] = []
    original = Servable.run
    monkeypatch.setattr(Servable, "run", lambda self, *a, **k: runs.append(a[0]) or original(self, *a, **k))
    service = PredictionService(server.manager)
    request = predict_request("tiny", {"frames": savedmodels.clips(1)}, "features_graph")
    with pytest.raises(Aborted) as caught:
        service.Predict(request, FakeContext(remaining=0.0))
    assert caught.value.args[0] == grpc.StatusCode.DEADLINE_EXCEEDED
    assert runs == []
    assert len(service.Predict(request, FakeContext(remaining=30.0)).outputs["features"].float_val) == 192
    assert runs == ["features_graph"]


def test_unexpected_failure_inside_a_request_is_internal_and_the_server_keeps_serving(server, stubs, monkeypatch):
    from vswin.serving.servable import Servable

    predict, _ = stubs(server)
    original = Servable.run
    calls = iter([True, False])

    def flaky(self, *args, **kwargs):
        if next(calls):
            raise RuntimeError("boom")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Servable, "run", flaky)
    request = predict_request("tiny", {"frames": savedmodels.clips(1)}, "features_graph")
    assert code_of(predict.Predict, request) == (grpc.StatusCode.INTERNAL, "RuntimeError: boom")
    assert predict.Predict(request, timeout=60).model_spec.version.value == 1
