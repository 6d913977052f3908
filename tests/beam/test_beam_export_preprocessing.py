"""ExtractFeatures on the tiny exports, in both modes (single-process DirectRunner): images and video frames for an
image model, and the export's own preprocessing, followed by the decode and recorded in the results."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from vswin import contract
from vswin.beam.models import ExportedModel, RemoteModel
from vswin.client import VideoSwinClient
from vswin.client.extract import ExtractOptions, ExtractResult, ImageResult

FRAMES = 3  # --frames-per-video for the image model


@pytest.fixture(scope="module")
def files(tmp_path_factory, real_videos) -> dict[str, str]:
    """Images of three formats and sizes (one of them not a square), a video, and a .jpg that is not an image."""
    folder = tmp_path_factory.mktemp("files")
    rng = np.random.default_rng(5)
    paths = {}
    for name, (height, width) in {"photo.jpg": (48, 64), "chart.png": (90, 40), "thumb.webp": (36, 36)}.items():
        pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        assert cv2.imwrite(str(folder / name), pixels)
        paths[name] = str(folder / name)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not the rest of a JPEG")
    paths["broken.jpg"] = str(folder / "broken.jpg")
    shutil.copy(real_videos["bikes"], folder / "bikes.mp4")
    paths["bikes.mp4"] = str(folder / "bikes.mp4")
    return paths


def run(files: list[str], branches: dict[str, tuple[object, ExtractOptions]], check_rows, check_failed) -> None:
    """One pipeline: each branch's model over `files`, its rows and failures checked by the callables."""
    import apache_beam as beam
    from apache_beam.testing.util import assert_that

    from vswin.beam import ExtractFeatures

    with beam.Pipeline() as pipeline:
        uris = pipeline | beam.Create(files)
        for label, (model, options) in branches.items():
            out = uris | f"Extract{label}" >> ExtractFeatures(model, options)
            assert_that(out.rows, check_rows, label=f"{label}Rows")
            assert_that(out.failed, check_failed, label=f"{label}Failed")


def test_images_and_video_frames_for_an_image_model_in_both_modes_equal_the_client(serving, savedmodels, files):
    with VideoSwinClient(serving.target, "img") as client:
        expected = {files[name]: client.extract_image(files[name]) for name in ("photo.jpg", "chart.png", "thumb.webp")}
        expected[files["bikes.mp4"]] = client.extract(files["bikes.mp4"], frames_per_video=FRAMES)

    def check_rows(results):
        by_key = {r.image if isinstance(r, ImageResult) else r.video: r for r in results}
        assert set(by_key) == set(expected), sorted(by_key)
        for key, want in expected.items():
            got = by_key[key]
            assert type(got) is type(want) and got.to_json() == want.to_json(), key
            np.testing.assert_allclose(got.features, want.features, atol=1e-6, rtol=0)
        frames = by_key[files["bikes.mp4"]]
        assert frames.clip_features.shape == (FRAMES, 1, 8) and frames.frame_indices.shape == (FRAMES, 1)
        np.testing.assert_allclose(frames.clip_features, expected[files["bikes.mp4"]].clip_features, atol=1e-6, rtol=0)

    def check_failed(failures):
        assert [(f.key, f.stage) for f in failures] == [(files["broken.jpg"], "decode")], failures
        assert "ImageError" in failures[0].error and "cannot decode it" in failures[0].error

    options = ExtractOptions(frames_per_video=FRAMES)
    run(list(files.values()), {"Remote": (RemoteModel(serving.target, "img"), options),
                               "InProcess": (ExportedModel(savedmodels["img"]), options)}, check_rows, check_failed)


def test_a_video_models_results_record_the_exports_sampling_when_the_flags_leave_it_unset(
    serving, savedmodels, files
):
    with VideoSwinClient(serving.target, "ssv2") as client:
        want = client.extract(files["bikes.mp4"])
    assert (want.options.sampling, want.options.clips) == ("segments", 1)
    assert (contract.Preprocessing().sampling, contract.NUM_CLIPS) == ("uniform", 4)  # what the defaults would say


    def check_rows(results):
        assert len(results) == 1 and isinstance(results[0], ExtractResult)
        got = results[0]
        assert got.options == want.options and got.to_json() == want.to_json()
        np.testing.assert_allclose(got.clip_features, want.clip_features, atol=1e-6, rtol=0)

    def check_failed(failures):
        assert failures == []

    run([files["bikes.mp4"]], {"Remote": (RemoteModel(serving.target, "ssv2"), ExtractOptions()),
                               "InProcess": (ExportedModel(savedmodels["ssv2"]), ExtractOptions())},
        check_rows, check_failed)


def test_an_image_sent_to_a_video_model_fails_alone(serving, files):
    def check_rows(results):
        assert [r.video for r in results] == [files["bikes.mp4"]]

    def check_failed(failures):
        assert [(f.key, f.stage) for f in failures] == [(files["thumb.webp"], "decode")], failures
        assert "images need an image model" in failures[0].error

    run([files["thumb.webp"], files["bikes.mp4"]], {"Remote": (RemoteModel(serving.target, "ssv2"), ExtractOptions())},
        check_rows, check_failed)


def test_video_sampling_flags_for_an_image_model_stop_the_job_before_any_file(serving, files):
    with pytest.raises(ValueError, match="clips apply to video models"):
        run([files["bikes.mp4"]], {"Remote": (RemoteModel(serving.target, "img"), ExtractOptions(clips=2))},
            lambda rows: None, lambda failed: None)
