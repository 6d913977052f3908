"""`vswin beam` with an image export, both modes: a folder of images of three formats mixed with a video (its
frames: --frames-per-video) and a corrupt image. Each job runs once (module fixtures).

The model is the tiny `img` export (tests/tiny_exports.py: the 224-style evaluation at 32, resize 36, crop 32)
that the package's other pipeline tests use, on the session's tiny server: these jobs check the command's
wiring and rows against the client through the same server, which a real network's weights add nothing to,
and swin_micro at 224 cost a server, a SavedModel load and its forward passes (7 of the module's 11 CPU-s)."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.beam.conftest import read_failures, read_rows
from tests.tiny_exports import FEATURE_DIM

pytestmark = pytest.mark.slow

SIGNATURE = "features_graph"
IMAGE_MODEL_NAME = "img"
FRAMES = 4
IMAGES = {"street.jpg": (300, 400), "poster.png": (480, 256), "square.webp": (224, 224)}


@pytest.fixture(scope="module")
def image_served(tiny_server) -> str:
    """The target of the session's tiny server, which serves `img` (no fault rules outside `serving`'s tests)."""
    return tiny_server.target


@pytest.fixture(scope="module")
def folder(tmp_path_factory, real_videos) -> Path:
    """Images written with OpenCV, bikes.mp4, and corrupt.jpg (the start of a JPEG); read-only for the tests."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(3)
    for name, (height, width) in IMAGES.items():
        gradient = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
        noise = rng.integers(0, 64, size=(height, width, 3))
        assert cv2.imwrite(str(folder / name), np.clip(gradient + noise, 0, 255).astype(np.uint8))
    (folder / "corrupt.jpg").write_bytes((folder / "street.jpg").read_bytes()[:600])
    shutil.copy(real_videos["bikes"], folder / "bikes.mp4")
    return folder


@pytest.fixture(scope="module")
def expected(image_served, folder) -> dict[str, object]:
    """VideoSwinClient's results for every good file, through the same server: what each job must write."""
    from vswin.client import VideoSwinClient

    with VideoSwinClient(image_served, IMAGE_MODEL_NAME, signature=SIGNATURE) as client:
        results = {str(folder / name): client.extract_image(folder / name) for name in IMAGES}
        results[str(folder / "bikes.mp4")] = client.extract(folder / "bikes.mp4", frames_per_video=FRAMES)
    return results


def run_job(args: list[str], work: Path) -> tuple[int, Path]:
    from vswin.cli import main

    prefix = work / "out" / "feats"
    return main(["beam", *args, "--output", str(prefix), "--signature", SIGNATURE,
                 "--frames-per-video", str(FRAMES)]), prefix


@pytest.fixture(scope="module")
def remote(image_served, folder, tmp_path_factory) -> tuple[int, Path]:
    return run_job(["--inputs", str(folder), "--server", image_served, "--model", IMAGE_MODEL_NAME],
                   tmp_path_factory.mktemp("remote"))


@pytest.fixture(scope="module")
def in_process(savedmodels, folder, tmp_path_factory) -> tuple[int, Path]:
    return run_job(["--inputs", str(folder), "--savedmodel", savedmodels[IMAGE_MODEL_NAME]],
                   tmp_path_factory.mktemp("in_process"))


@pytest.fixture(params=["remote", "in_process"])
def job(request) -> tuple[int, Path]:
    return request.getfixturevalue(request.param)


def test_each_image_is_one_row_of_its_features(job, expected, folder):
    code, prefix = job
    assert code == 1  # the corrupt image failed, the job finished
    rows = read_rows(prefix)
    assert set(rows) == set(expected)
    for name, (height, width) in IMAGES.items():
        row, want = rows[str(folder / name)], expected[str(folder / name)]
        assert (want.height, want.width) == (height, width)
        assert (row["model"], row["version"], row["clip_starts"]) == (IMAGE_MODEL_NAME, 1, [])
        np.testing.assert_allclose(row["features"], want.features, atol=1e-5, rtol=0)
        np.testing.assert_allclose(row["clip_features"], [[want.features]], atol=1e-5, rtol=0)


def test_a_videos_frames_are_its_clips_at_their_times(job, expected, folder):
    _, prefix = job
    row, want = read_rows(prefix)[str(folder / "bikes.mp4")], expected[str(folder / "bikes.mp4")]
    assert np.shape(row["clip_features"]) == (FRAMES, 1, FEATURE_DIM)
    np.testing.assert_allclose(row["clip_features"], want.clip_features, atol=1e-5, rtol=0)
    np.testing.assert_allclose(row["features"], want.features, atol=1e-5, rtol=0)
    np.testing.assert_allclose(row["clip_starts"], want.clip_starts, atol=1e-9)
    assert len(set(row["clip_starts"])) == FRAMES  # frames spread over the video


def test_a_corrupt_image_is_that_files_failure(job, folder):
    _, prefix = job
    failures = read_failures(prefix)
    assert list(failures) == [str(folder / "corrupt.jpg")]
    assert failures[str(folder / "corrupt.jpg")]["stage"] == "decode"
    assert "ImageError" in failures[str(folder / "corrupt.jpg")]["error"]
