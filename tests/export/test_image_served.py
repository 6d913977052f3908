"""The image export served by `vswin serve` (warmup replayed, XLA on), called with the official stubs."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.conftest import IMAGE_MODEL_NAME
from tests.serving.requests import predict_request

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(image_export):
    from vswin.serving.model_config import single_model_config
    from vswin.serving.server import ModelServer, ServerOptions

    server = ModelServer(ServerOptions(model_config=single_model_config(IMAGE_MODEL_NAME, image_export),
                                       host="127.0.0.1", port=0, xla_cpu_compilation_enabled=True,
                                       enable_model_warmup=True))
    server.start()  # returns once the version is loaded: its warmup records replayed without error
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel)
    channel.close()
    server.stop(grace=5)


def test_served_image_features_and_classes_equal_the_export_in_process(served, image_export):
    images = np.random.default_rng(11).integers(0, 256, size=(2, 224, 224, 3), dtype=np.uint8)
    loaded = tf.saved_model.load(str(image_export / "1"))
    response = served.Predict(predict_request(IMAGE_MODEL_NAME, {"images": images}), timeout=300)
    features = tf.make_ndarray(response.outputs["features"])
    expected = loaded.signatures["serving_default"](images=tf.constant(images))["features"].numpy()
    assert features.shape == (2, 96) and np.abs(features - expected).max() <= 1e-4
    classified = served.Predict(predict_request(IMAGE_MODEL_NAME, {"images": images}, "classify"), timeout=300)
    labels = tf.make_ndarray(classified.outputs["top_k_labels"])
    assert labels.shape == (2, 5) and all(label.decode().startswith("c") for label in labels.ravel())
    meta = served.Predict(predict_request(IMAGE_MODEL_NAME, {"row": np.zeros(1, np.int32)}, "metadata"), timeout=60)
    assert json.loads(tf.make_ndarray(meta.outputs["metadata"])[0])["family"] == "image"


def test_a_clip_sent_to_the_image_model_is_invalid_argument(served):
    clip = np.zeros((1, 2, 224, 224, 3), np.uint8)
    with pytest.raises(grpc.RpcError) as caught:
        served.Predict(predict_request(IMAGE_MODEL_NAME, {"images": clip}), timeout=60)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
