"""End to end with a real model: extract through gRPC equals the same clips run in-process (1e-4)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest

from vswin.client import VideoSwinClient
from vswin.client.sampling import Sampling
from vswin.client.video import load_clips

pytestmark = pytest.mark.slow
CLIP = (16, 64, 64)
LABELS = [f"action {i}" for i in range(10)]


@pytest.fixture(scope="module")
def micro_saved_model(tmp_path_factory, micro_arch, micro_checkpoint) -> Path:
    """The fixture checkpoint behind a uint8 `frames` -> `features` serving signature (normalization in the graph)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    import vswin.model

    model = vswin.model.load(micro_checkpoint, micro_arch)
    mean = tf.constant(vswin.model.MEAN, tf.float32)
    std = tf.constant(vswin.model.STD, tf.float32)

    class Serving(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None, *CLIP, 3], tf.uint8, name="frames")])
        def serve(self, frames):
            return {"features": self.model((tf.cast(frames, tf.float32) - mean) / std)["features"]}

        @tf.function(input_signature=[tf.TensorSpec([None, *CLIP, 3], tf.uint8, name="frames")])
        def classify(self, frames):
            logits = self.model((tf.cast(frames, tf.float32) - mean) / std)["logits"]
            probabilities = tf.nn.softmax(logits)
            top = tf.math.top_k(probabilities, k=3)
            return {
                "logits": logits,
                "probabilities": probabilities,
                "top_k_scores": top.values,
                "top_k_classes": top.indices,
                "top_k_labels": tf.gather(LABELS, top.indices),
            }

    module = Serving()
    path = tmp_path_factory.mktemp("export") / "micro" / "1"
    signatures = {"serving_default": module.serve, "classify": module.classify}
    tf.saved_model.save(module, str(path), signatures=signatures)
    return path


@pytest.fixture(scope="module")
def served(micro_saved_model):
    from tests.client.savedmodel_serving import serve_saved_model

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = serve_saved_model("micro", 1, micro_saved_model, port)
    yield f"127.0.0.1:{port}"
    server.stop(grace=None)


def _in_process(path: Path, views: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    return signature(frames=tf.constant(views))["features"].numpy()


def test_model_info_reads_the_exported_signature(served):
    with VideoSwinClient(served, "micro") as client:
        info = client.model_info()
    assert (info.clip_shape, info.feature_dim, info.version) == (CLIP, 192, 1)
    assert info.input.dtype == "DT_UINT8"


@pytest.mark.parametrize(
    "video, options",
    [
        ("bikes", {"clips": 2, "crops": 3, "frame_interval": 2}),
        ("bigbuckbunny", {"sampling": "sliding", "crops": 1, "frame_interval": 4, "stride": 64}),
    ],
)
def test_extract_through_the_server_equals_the_exported_model_in_process(
    served, micro_saved_model, real_videos, video, options
):
    with VideoSwinClient(served, "micro", max_batch=4) as client:
        result = client.extract(real_videos[video], **options)
    sampling = Sampling(
        options.get("sampling", "uniform"), CLIP[0], options["frame_interval"], options.get("clips", 4),
        stride=options.get("stride"),
    )
    clips = load_clips(real_videos[video], sampling, CLIP[1:], num_crops=options["crops"])
    views = clips.clips.reshape(-1, *CLIP, 3)
    expected = _in_process(micro_saved_model, views).reshape(*clips.clips.shape[:2], 192)
    np.testing.assert_allclose(result.clip_features, expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(result.features, expected.mean(axis=(0, 1)), atol=1e-4, rtol=0)
    np.testing.assert_array_equal(result.frame_indices, clips.frame_indices)
    assert np.abs(expected).max() > 1e-2  # a real signal, not zeros on both sides


def test_classify_returns_the_exported_top_k_labels(served, micro_saved_model, real_videos):
    import tensorflow as tf

    clips = load_clips(real_videos["bikes"], Sampling("uniform", CLIP[0], 2, 3), CLIP[1:], num_crops=1)
    views = clips.clips.reshape(-1, *CLIP, 3)
    with VideoSwinClient(served, "micro", max_batch=2) as client:
        result = client.classify(views)
    expected = tf.saved_model.load(str(micro_saved_model)).signatures["classify"](frames=tf.constant(views))
    np.testing.assert_allclose(result.probabilities, expected["probabilities"].numpy(), atol=1e-5)
    np.testing.assert_array_equal(result.top_k_classes, expected["top_k_classes"].numpy())
    assert result.top_k_labels == [[LABELS[i] for i in row] for row in expected["top_k_classes"].numpy()]
