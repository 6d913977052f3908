"""The shipped serving_config/models.config, with /models mounted on a local folder, serves an export.

Each of the six model names gets a copy of the nano export (the config is under test, not the model: it
loads and compiles in a fraction of the micro's time) as version 1 (the layout `vswin export --out /models
--name NAME` writes); the only change to the config is the /models prefix, as a volume mount would make
it. The server is `vswin serve`'s, started in this process from its command line's flags (the process
itself, its signals and exit, is tests/serving/test_serve_cli.py's). Requests are built with
tensorflow_serving.apis exactly as a TF Serving client does.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc
from tensorflow_serving.config import model_server_config_pb2

from tests.serving.requests import predict_request, states, status_request
from vswin.cli import build_parser
from vswin.serving.main import options_from_args

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(420)


def test_shipped_models_config_serves_an_export(nano_export, tmp_path, free_port):
    from vswin.serving.server import ModelServer

    shipped = (REPO / "serving_config" / "models.config").read_text()
    mounted = tmp_path / "models"
    config = tmp_path / "models.config"
    config.write_text(shipped.replace('base_path: "/models/', f'base_path: "{mounted}/'))
    names = [entry.name for entry in text_format.Parse(
        config.read_text(), model_server_config_pb2.ModelServerConfig()).model_config_list.config]  # fmt: skip
    assert len(names) == 6
    for name in names:
        shutil.copytree(nano_export / "1", mounted / name / "1")

    flags = [f"--port={free_port}", "--host=127.0.0.1", f"--model_config_file={config}",
             "--enable_grpc_healthcheck_service", "--xla_cpu_compilation_enabled=true", "--enable_model_warmup=false"]
    server = ModelServer(options_from_args(build_parser().parse_args(["serve", *flags])))
    try:
        server.start()  # returns once every configured model has loaded (or failed to)
        with grpc.insecure_channel(f"127.0.0.1:{free_port}") as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=30)
            assert health.status == health_pb2.HealthCheckResponse.SERVING  # every model has a servable version
            models = model_service_pb2_grpc.ModelServiceStub(channel)
            assert {name: states(models.GetModelStatus(status_request(name), timeout=10)) for name in names} == {
                name: {1: "AVAILABLE"} for name in names
            }
            frames = np.random.default_rng(0).integers(0, 256, size=(1, 2, 32, 32, 3), dtype=np.uint8)
            predict = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            response = predict.Predict(predict_request(names[0], {"frames": frames}, label="stable"), timeout=120)
            features = tf.make_ndarray(response.outputs["features"])
            assert (response.model_spec.name, response.model_spec.version.value) == (names[0], 1)
            assert response.model_spec.signature_name == "serving_default"
            assert features.shape == (1, 48) and np.isfinite(features).all()
    finally:
        server.stop(grace=5)
    in_process = tf.saved_model.load(str(nano_export / "1")).signatures["features_graph"]
    np.testing.assert_allclose(features, in_process(frames=tf.constant(frames))["features"].numpy(), atol=1e-4)
