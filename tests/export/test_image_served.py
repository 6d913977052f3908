"""The image export served by `vswin serve` (warmup replayed, XLA on): called with the official stubs, and
`vswin extract` on a folder of images and a video's frames (issue 14's end to end)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.conftest import IMAGE_MODEL_NAME
from tests.serving.requests import predict_request

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def target(image_export):
    """The image export on vswin serve in this process, XLA on, warmup replayed: its gRPC target."""
    from vswin.serving.model_config import single_model_config
    from vswin.serving.server import ModelServer, ServerOptions

    server = ModelServer(ServerOptions(model_config=single_model_config(IMAGE_MODEL_NAME, image_export),
                                       host="127.0.0.1", port=0, xla_cpu_compilation_enabled=True,
                                       enable_model_warmup=True))
    server.start()  # returns once the version is loaded: its warmup records replayed without error
    yield f"127.0.0.1:{server.port}"
    server.stop(grace=5)


@pytest.fixture(scope="module")
def served(target):
    """The official PredictionService stub on `target`."""
    channel = grpc.insecure_channel(target)
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel)
    channel.close()


def test_served_image_features_and_classes_equal_the_export_in_process(served, image_loaded):
    images = np.random.default_rng(11).integers(0, 256, size=(2, 224, 224, 3), dtype=np.uint8)
    response = served.Predict(predict_request(IMAGE_MODEL_NAME, {"images": images}), timeout=300)
    features = tf.make_ndarray(response.outputs["features"])
    expected = image_loaded.signatures["serving_default"](images=tf.constant(images))["features"].numpy()
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


def test_vswin_extract_turns_images_and_a_videos_frames_into_the_exports_features(
    target, image_export, image_loaded, real_videos, tmp_path, capsys
):
    from vswin import contract
    from vswin.cli import main
    from vswin.client.image import ImageCrop, load_image
    from vswin.client.sampling import Sampling
    from vswin.client.video import iter_views

    folder, out = tmp_path / "in", tmp_path / "feats"
    folder.mkdir()
    rng = np.random.default_rng(7)
    images = {"street.jpg": (300, 400), "poster.png": (500, 260), "square.webp": (224, 224)}
    for name, (height, width) in images.items():
        assert cv2.imwrite(str(folder / name), rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n and then nothing an image needs")
    shutil.copy(real_videos["bikes"], folder / "bikes.mp4")

    code = main(["extract", *sorted(map(str, folder.iterdir())), "--server", target, "--model", IMAGE_MODEL_NAME,
                 "--frames-per-video", "4", "--out", str(out), "--no-progress"])

    assert code == 1  # one file failed; the others were extracted
    stderr = capsys.readouterr().err
    assert "4 extracted, 0 skipped, 1 failed" in stderr and f"FAILED {folder / 'broken.png'}: ImageError" in stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{Path(n).stem}.{ext}" for n in images for ext in ("npy", "json")]
        + ["bikes.npy", "bikes.clips.npy", "bikes.json"])

    # The same pixels, made with the client's own preprocessing, through the export loaded here.
    metadata = json.loads((image_export / "1" / contract.ASSETS_EXTRA / contract.METADATA_FILE).read_text())
    preprocessing = contract.Preprocessing.from_dict(metadata["preprocessing"])
    pixels = [load_image(folder / name, preprocessing).view for name in images]
    frame_sampling = Sampling("segments", clip_len=1, num_clips=4)  # --frames-per-video 4
    (frames,) = iter_views(folder / "bikes.mp4", frame_sampling, ImageCrop(preprocessing))
    pixels += list(frames.clips.reshape(4, *frames.clips.shape[-3:]))
    # features_graph: the served XLA computation without XLA, so nothing compiles here for a new batch shape
    expected = image_loaded.signatures["features_graph"](images=tf.constant(np.stack(pixels)))["features"].numpy()

    for name, want in zip(images, expected):
        assert np.abs(np.load(out / f"{Path(name).stem}.npy") - want).max() <= 1e-4, name
        sidecar = json.loads((out / f"{Path(name).stem}.json").read_text())
        assert (sidecar["family"], sidecar["height"], sidecar["width"]) == ("image", *images[name])
    clip_features = np.load(out / "bikes.clips.npy")
    assert clip_features.shape == (4, 1, 96) and np.abs(clip_features[:, 0] - expected[3:]).max() <= 1e-4
    assert np.abs(np.load(out / "bikes.npy") - expected[3:].mean(axis=0)).max() <= 1e-4
    assert json.loads((out / "bikes.json").read_text())["clip_start_frames"] == frames.frame_indices[:, 0].tolist()
