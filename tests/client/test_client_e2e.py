"""End to end with a real model: extract through vswin serve equals the same clips run in-process (1e-4)."""

from __future__ import annotations

import numpy as np
import pytest

from vswin import contract
from vswin.client import VideoSwinClient
from vswin.client.sampling import Sampling
from vswin.client.video import load_clips

pytestmark = pytest.mark.slow
CLIP = (16, 64, 64)
LABELS = [str(i) for i in range(10)]  # vswin export's labels without a label file: class indices


@pytest.fixture(scope="module")
def loaded(micro_loaded):
    """The export loaded in this process: the reference the served answers are checked against."""
    return micro_loaded


@pytest.fixture(scope="module")
def served(micro_export):
    """`vswin serve` in this process on the export, XLA on (the export's warmup compiles batch sizes 1 and 2)."""
    from tests.tiny_exports import TinyServer
    from vswin.serving.model_config import single_model_config

    server = TinyServer(single_model_config("vswin_micro", micro_export), xla_cpu_compilation_enabled=True)
    yield server.target
    server.stop()


def _in_process(loaded, signature: str, views: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    return loaded.signatures[signature](frames=tf.constant(views))["features"].numpy()


def test_model_info_reads_the_exported_signature_and_preprocessing(served):
    with VideoSwinClient(served, "vswin_micro") as client:
        info = client.model_info()
    assert (info.clip_shape, info.feature_dim, info.version) == (CLIP, 192, 1)
    assert info.input.dtype == "DT_UINT8"
    assert info.preprocessing == contract.video_preprocessing(clip_len=16, size=64)  # the export's metadata signature
    assert info.export["family"] == contract.VIDEO


@pytest.mark.parametrize(
    "video, options",
    [
        ("bikes", {"clips": 2, "crops": 3, "frame_interval": 2}),
        ("bigbuckbunny", {"sampling": "sliding", "crops": 1, "frame_interval": 4, "stride": 64}),
    ],
)
def test_extract_through_the_server_equals_the_exported_model_in_process(
    served, loaded, real_videos, video, options
):
    # features_graph: the serving computation without XLA, so the test doesn't wait for a compile per batch shape
    with VideoSwinClient(served, "vswin_micro", signature="features_graph", max_batch=4) as client:
        result = client.extract(real_videos[video], **options)
    sampling = Sampling(
        options.get("sampling", "uniform"), CLIP[0], options["frame_interval"], options.get("clips", 4),
        stride=options.get("stride"),
    )
    clips = load_clips(real_videos[video], sampling, CLIP[1:], num_crops=options["crops"])
    views = clips.clips.reshape(-1, *CLIP, 3)
    expected = _in_process(loaded, "features_graph", views).reshape(*clips.clips.shape[:2], 192)
    np.testing.assert_allclose(result.clip_features, expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(result.features, expected.mean(axis=(0, 1)), atol=1e-4, rtol=0)
    np.testing.assert_array_equal(result.frame_indices, clips.frame_indices)
    assert np.abs(expected).max() > 1e-2  # a real signal, not zeros on both sides


def test_xla_serving_default_and_classify_with_top_k_labels(served, loaded, real_videos):
    """The XLA signatures at the warmup batch size 2 (one compile each)."""
    import tensorflow as tf

    clips = load_clips(real_videos["bikes"], Sampling("uniform", CLIP[0], 2, 2), CLIP[1:], num_crops=1)
    views = clips.clips.reshape(-1, *CLIP, 3)
    with VideoSwinClient(served, "vswin_micro", max_batch=2) as client:
        features = client.features(views)
        result = client.classify(views)
    np.testing.assert_allclose(features, _in_process(loaded, "serving_default", views), atol=1e-4, rtol=0)
    expected = loaded.signatures["classify"](frames=tf.constant(views))
    np.testing.assert_allclose(result.probabilities, expected["probabilities"].numpy(), atol=1e-5)
    np.testing.assert_array_equal(result.top_k_classes, expected["top_k_classes"].numpy())
    assert result.top_k_labels == [[LABELS[i] for i in row] for row in expected["top_k_classes"].numpy()]
