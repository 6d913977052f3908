"""The exported micro model behind `vswin serve` and, when on PATH, `tensorflow_model_server`: same requests, same answers.

Each backend runs as its own process with the same flags (plus `--host` for
vswin serve), serving a copy of the session's `micro_export`. Requests are
built with tensorflow_serving.apis only, as a production client builds them.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.saved_model import loader_impl
from tensorflow_serving.apis import get_model_metadata_pb2, model_service_pb2_grpc, prediction_service_pb2_grpc

from tests.serving.requests import metadata_request, predict_request, states, status_request

pytestmark = pytest.mark.slow

MODEL = "vswin_micro"
BACKENDS = ("vswin", "tensorflow_model_server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module", params=BACKENDS)
def served(request, micro_export, subprocess_env, tmp_path_factory):
    """(predict stub, model stub, base path) of a running server; stopped with SIGTERM after the module."""
    if request.param == "tensorflow_model_server" and shutil.which("tensorflow_model_server") is None:
        pytest.skip("tensorflow_model_server is not on PATH; these tests ran against vswin serve only")
    base = tmp_path_factory.mktemp("integration") / MODEL
    shutil.copytree(micro_export / "1", base / "1")
    port = free_port()
    flags = [f"--port={port}", f"--model_name={MODEL}", f"--model_base_path={base}",
             "--xla_cpu_compilation_enabled=true", "--enable_model_warmup=false"]  # fmt: skip
    if request.param == "vswin":
        command = [sys.executable, "-m", "vswin", "serve", *flags, "--host=127.0.0.1"]
    else:
        command = ["tensorflow_model_server", *flags]
    log_path = base.parent / "server.log"
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=subprocess_env)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", -1)])
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if states(models.GetModelStatus(status_request(MODEL), timeout=5)) == {1: "AVAILABLE"}:
                    break
            except grpc.RpcError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.3)
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel), models, base
    finally:
        channel.close()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, size=(2, 16, 64, 64, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def in_process(micro_loaded, frames) -> dict[str, np.ndarray]:
    """features from tf.saved_model.load's signatures, per signature."""
    return {
        name: micro_loaded.signatures[name](frames=tf.constant(frames))["features"].numpy()
        for name in ("serving_default", "features_graph")
    }


@pytest.mark.parametrize("signature", ["serving_default", "features_graph"])
def test_features_equal_the_in_process_signature(served, frames, in_process, signature):
    predict, _, _ = served
    response = predict.Predict(predict_request(MODEL, {"frames": frames}, signature), timeout=120)
    features = tf.make_ndarray(response.outputs["features"])
    assert features.shape == in_process[signature].shape
    np.testing.assert_allclose(features, in_process[signature], atol=1e-4, rtol=0)
    assert (response.model_spec.name, response.model_spec.version.value) == (MODEL, 1)


def test_metadata_is_the_signature_def_map(served):
    predict, _, base = served
    response = predict.GetModelMetadata(metadata_request(MODEL), timeout=30)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    saved = loader_impl.parse_saved_model(str(base / "1")).meta_graphs[0].signature_def
    assert dict(signatures.signature_def) == dict(saved)


@pytest.mark.parametrize(
    ("request_fn", "code"),
    [
        (lambda: predict_request("nope", {"frames": np.zeros((1, 16, 64, 64, 3), np.uint8)}), grpc.StatusCode.NOT_FOUND),
        (lambda: predict_request(MODEL, {"frames": np.zeros((1, 16, 64, 64, 3), np.uint8)}, version=9),
         grpc.StatusCode.NOT_FOUND),
        (lambda: predict_request(MODEL, {"frames": np.zeros((1, 16, 64, 64, 3), np.float32)}, "features_graph"),
         grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: predict_request(MODEL, {"images": np.zeros((1, 16, 64, 64, 3), np.uint8)}, "features_graph"),
         grpc.StatusCode.INVALID_ARGUMENT),
    ],
    ids=["model", "version", "dtype", "input-name"],
)  # fmt: skip
def test_errors_have_tf_servings_codes(served, request_fn, code):
    predict, _, _ = served
    with pytest.raises(grpc.RpcError) as caught:
        predict.Predict(request_fn(), timeout=60)
    assert caught.value.code() == code


def test_status_reports_the_available_version(served):
    _, models, _ = served
    assert states(models.GetModelStatus(status_request(MODEL), timeout=30)) == {1: "AVAILABLE"}
