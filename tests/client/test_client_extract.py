"""client.extract / extract_many / extract_image (sync and asyncio) against the real in-process server, on real
videos and images: preprocessing from the export, explicit options, frame features, per-file failures."""

from __future__ import annotations

import asyncio
import time

import grpc
import numpy as np
import pytest

from tests.tiny_exports import TinyServer, expected_features, tiny_config
from vswin import contract
from vswin.client import (
    AsyncVideoSwinClient,
    ExtractOptions,
    ImageError,
    InvalidInput,
    RetryPolicy,
    ServerUnavailable,
    VideoError,
    VideoSwinClient,
)
from vswin.client.image import ImageCrop, preprocess_image, read_image
from vswin.client.sampling import Sampling, segment_indices
from vswin.client.video import iter_views, load_clips

PREDICT, DEFAULT = "Predict", contract.SERVING_DEFAULT


def _expected(video, sampling_mode="uniform", clips=4, crops=3, frame_interval=2):
    loaded = load_clips(video, Sampling(sampling_mode, 4, frame_interval, clips), (32, 32), num_crops=crops)
    views = loaded.clips.reshape(-1, 4, 32, 32, 3)
    return loaded, expected_features(views).reshape(loaded.clips.shape[0], crops, -1)


def _sizes(faults, name: str = contract.FRAMES) -> list[int]:
    return [r.inputs[name].tensor_shape.dim[0].size for r in faults.requests(PREDICT, DEFAULT)]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A landscape jpg, a portrait png, a webp with alpha, and a corrupt jpg."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)).save(folder / "wide.jpg", quality=90)
    Image.fromarray(rng.integers(0, 256, (90, 40, 3), dtype=np.uint8)).save(folder / "tall.png")
    Image.fromarray(rng.integers(0, 256, (36, 36, 4), dtype=np.uint8), "RGBA").save(folder / "alpha.webp", lossless=True)
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 20)
    return {path.stem: path for path in folder.iterdir()}


def test_extract_returns_clip_and_video_features_and_times(serving, real_videos):
    with VideoSwinClient(serving.target, "fake", max_batch=5) as client:
        result = client.extract(real_videos["bikes"], clips=4, crops=3, frame_interval=2)
    loaded, expected = _expected(real_videos["bikes"])
    assert result.clip_features.shape == (4, 3, 8)
    np.testing.assert_array_equal(result.clip_features, expected)
    np.testing.assert_allclose(result.features, expected.mean(axis=(0, 1)), atol=1e-6)
    np.testing.assert_array_equal(result.frame_indices, loaded.frame_indices)
    # 250 frames, span 4*2 = 8: avg_interval (250-8+1)/4 = 60.75 -> offsets int(60.75k + 30.375) = 30, 91, 151, 212
    assert result.frame_indices[:, 0].tolist() == [30, 91, 151, 212]
    np.testing.assert_allclose(result.clip_starts, [1.2, 3.64, 6.04, 8.48])
    np.testing.assert_allclose(result.clip_ends, [(30 + 7) / 25, (91 + 7) / 25, (151 + 7) / 25, (212 + 7) / 25])
    assert (result.model, result.version, result.num_clips) == ("fake", 2, 12)
    sidecar = result.to_json()
    assert sidecar["clip_start_frames"] == [30, 91, 151, 212] and sidecar["version"] == 2
    assert _sizes(serving.faults) == [5, 5, 2]


def test_extract_defaults_to_the_exports_preprocessing(serving, real_videos):
    """`fake` records 2 clips x 1 crop, `legacy` has no metadata: the contract's 4 x 3, every 2nd frame."""
    with VideoSwinClient(serving.target, "fake") as client:
        exported = client.extract(real_videos["bikes"])
    with VideoSwinClient(serving.target, "legacy") as client:
        legacy = client.extract(real_videos["bikes"])
        overridden = client.extract(real_videos["bikes"], clips=2, crops=1)
    assert exported.clip_features.shape == (2, 1, 8)
    assert (exported.options.sampling, exported.options.frame_interval, exported.options.short_side) == ("uniform", 2, 32)
    np.testing.assert_array_equal(exported.clip_features, _expected(real_videos["bikes"], clips=2, crops=1)[1])
    assert legacy.clip_features.shape == (4, 3, 8)
    np.testing.assert_array_equal(legacy.clip_features, _expected(real_videos["bikes"])[1])
    np.testing.assert_array_equal(overridden.clip_features, exported.clip_features)


def test_segments_sampling_of_the_ssv2_style_export(serving, real_videos):
    """One clip of 4 frames, the middle of each quarter of the video (get_seq_frames in test mode)."""
    with VideoSwinClient(serving.target, "ssv2") as client:
        result = client.extract(real_videos["bikes"])
    # seg = 249 / 4 = 62.25: rounded bounds 0, 62, 124 (124.5 to even), 187, 249 -> middles 31, 93, 155, 218
    assert result.frame_indices.tolist() == [[31, 93, 155, 218]]
    assert result.options.sampling == "segments" and result.clip_features.shape == (1, 3, 8)
    _, expected = _expected(real_videos["bikes"], "segments", clips=1)
    np.testing.assert_array_equal(result.clip_features, expected)


def test_extract_sliding_gives_per_segment_features(serving, real_videos):
    with VideoSwinClient(serving.target, "fake") as client:
        result = client.extract(real_videos["bigbuckbunny"], sampling="sliding", crops=1, frame_interval=4, stride=32)
    # 132 frames, span 16, stride 32: starts 0, 32, 64, 96 (116 would end past 132)
    assert result.frame_indices[:, 0].tolist() == [0, 32, 64, 96]
    assert result.clip_features.shape == (4, 1, 8)
    np.testing.assert_allclose(result.clip_starts, [0, 1.28, 2.56, 3.84])


def test_extract_many_decodes_the_next_video_while_a_request_is_on_the_server(serving, real_videos, tmp_path,
                                                                              monkeypatch):  # fmt: skip
    """The first Predict is held (120 s) until the decoder starts on the second video: a client that decoded only
    between requests would wait the hold out."""
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    videos = [real_videos["bikes"], real_videos["bigbuckbunny"], broken, real_videos["bikes"]]
    original = ExtractOptions.batches

    def recording_batches(self, source, info, group_clips):
        if str(source).endswith("bigbuckbunny.mp4"):
            serving.faults.release()
        return original(self, source, info, group_clips)

    monkeypatch.setattr(ExtractOptions, "batches", recording_batches)
    serving.faults.delay(PREDICT, 120.0, signature=DEFAULT)
    with VideoSwinClient(serving.target, "fake") as client:
        results = list(client.extract_many(videos, clips=2, crops=1))
    assert serving.faults.expired == 0  # the decode of bigbuckbunny ended the hold on bikes' request
    assert [v for v, _ in results] == [str(v) for v in videos]
    assert isinstance(results[2][1], VideoError) and "broken.mp4" in str(results[2][1])
    np.testing.assert_array_equal(results[0][1].features, results[3][1].features)


def test_async_client_matches_sync_and_handles_concurrency(serving, real_videos, tmp_path):
    missing = tmp_path / "missing.mp4"

    async def run():
        async with AsyncVideoSwinClient(serving.target, "fake", max_batch=2) as client:
            info = await client.model_info()
            single = await client.extract(real_videos["bikes"], clips=3, crops=3)
            many = [item async for item in client.extract_many(
                [real_videos["bikes"], missing, real_videos["bigbuckbunny"]], concurrency=2, decode_workers=2,
                clips=3, crops=3,
            )]
            status = await client.status()
            return info, single, many, status

    info, single, many, status = asyncio.run(run())
    assert info.clip_shape == (4, 32, 32) and [s.state for s in status] == ["AVAILABLE", "AVAILABLE"]
    _, expected = _expected(real_videos["bikes"], clips=3)
    np.testing.assert_array_equal(single.clip_features, expected)
    by_video = dict(many)
    assert set(by_video) == {str(real_videos["bikes"]), str(missing), str(real_videos["bigbuckbunny"])}
    assert isinstance(by_video[str(missing)], VideoError) and "no such file" in str(by_video[str(missing)])
    np.testing.assert_array_equal(by_video[str(real_videos["bikes"])].features, single.features)
    assert max(_sizes(serving.faults)) == 2


def test_async_retries_then_recovers_and_cuts_refused_batches(tiny_exports, tmp_path):
    batching = tmp_path / "batching_parameters.txt"
    batching.write_text("max_batch_size { value: 2 }\nbatch_timeout_micros { value: 0 }\n")
    server = TinyServer(tiny_config(tiny_exports, ("fake",)), enable_batching=True,
                        batching_parameters_file=str(batching))  # fmt: skip
    server.faults.fail(PREDICT, grpc.StatusCode.UNAVAILABLE, signature=DEFAULT)
    frames = np.random.default_rng(0).integers(0, 256, (5, 4, 32, 32, 3), dtype=np.uint8)

    async def run():
        retry = RetryPolicy(max_attempts=3, initial_backoff=0.05, max_backoff=0.1)
        async with AsyncVideoSwinClient(server.target, "fake", max_batch=4, retry=retry) as client:
            return await client.features(frames), client.max_batch

    try:
        features, max_batch = asyncio.run(run())
    finally:
        server.stop()
    np.testing.assert_array_equal(features, expected_features(frames))
    assert max_batch == 2
    sizes = _sizes(server.faults)
    assert sorted(sizes[:2]) == [1, 4] and sum(s for s in sizes if s <= 2) >= 5


def test_async_unavailable_server_raises_server_unavailable(free_port):
    async def run():
        retry = RetryPolicy(max_attempts=2, initial_backoff=0.05, max_backoff=0.1)
        async with AsyncVideoSwinClient(f"127.0.0.1:{free_port}", "fake", timeout=2.0, retry=retry) as client:
            await client.model_info()

    with pytest.raises(ServerUnavailable) as err:
        asyncio.run(run())
    assert err.value.code == grpc.StatusCode.UNAVAILABLE


def test_async_deadline_exceeded_when_the_server_is_slow(serving):
    from vswin.client import DeadlineExceeded

    frames = np.random.default_rng(0).integers(0, 256, (1, 4, 32, 32, 3), dtype=np.uint8)

    async def run():
        async with AsyncVideoSwinClient(serving.target, "fake", timeout=0.5) as client:
            await client.model_info()
            serving.faults.delay(PREDICT, 120.0, signature=DEFAULT)
            start = time.monotonic()
            with pytest.raises(DeadlineExceeded) as err:
                await client.features(frames)
            return time.monotonic() - start, err.value.code

    elapsed, code = asyncio.run(run())
    assert elapsed < 60 and code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_long_sliding_extract_goes_in_groups_of_max_batch_clips(serving, real_videos):
    options = {"sampling": "sliding", "crops": 3, "frame_interval": 2, "stride": 8}
    with VideoSwinClient(serving.target, "fake", max_batch=4) as client:
        result = client.extract(real_videos["bikes"], **options)
    # 250 frames, span 8, stride 8: windows at 0, 8, ..., 240 -> 31 clips, 93 views
    loaded = load_clips(real_videos["bikes"], Sampling("sliding", 4, 2, stride=8), (32, 32), num_crops=3)
    assert result.clip_features.shape == (31, 3, 8)
    np.testing.assert_array_equal(
        result.clip_features, expected_features(loaded.clips.reshape(-1, 4, 32, 32, 3)).reshape(31, 3, 8)
    )
    np.testing.assert_allclose(result.clip_starts, np.arange(0, 241, 8) / 25)
    sizes = _sizes(serving.faults)
    assert sum(sizes) == 93 and max(sizes) == 4


# -- images ---------------------------------------------------------------------------------------------------


def test_extract_image_uses_the_exports_evaluation_preprocessing(serving, images):
    with VideoSwinClient(serving.target, "img") as client:
        info = client.model_info()
        assert (info.family, info.view_shape) == (contract.IMAGE, (32, 32, 3))
        assert (info.preprocessing.resize_to, info.preprocessing.interpolation) == (36, "bicubic")
        results = {name: client.extract_image(images[name]) for name in ("wide", "tall", "alpha")}
        array = client.extract_image(read_image(images["wide"]))
    for name, result in results.items():
        view = preprocess_image(read_image(images[name]), info.preprocessing)
        np.testing.assert_array_equal(result.features, expected_features(view[None])[0])
        assert (result.model, result.version, result.image) == ("img", 1, str(images[name]))
    assert (results["tall"].height, results["tall"].width) == (90, 40)
    np.testing.assert_array_equal(array.features, results["wide"].features)
    assert array.image == "<array>" and array.to_json()["preprocessing"]["resize_mode"] == "short_side"
    assert [r.inputs[contract.IMAGES].tensor_shape.dim[0].size for r in serving.faults.requests(PREDICT, DEFAULT)] == [1] * 4


def test_extract_images_batches_them_and_a_corrupt_one_is_an_image_error(serving, images):
    with VideoSwinClient(serving.target, "img", max_batch=2) as client:
        results = client.extract_images([images["wide"], images["tall"], images["alpha"]])
        with pytest.raises(ImageError, match="corrupt.jpg: cannot decode"):
            client.extract_images([images["wide"], images["corrupt"]])
    assert [r.image for r in results] == [str(images[n]) for n in ("wide", "tall", "alpha")]
    assert _sizes(serving.faults, contract.IMAGES) == [2, 1]


def test_images_need_an_image_model(serving, images):
    with VideoSwinClient(serving.target, "fake") as client:
        with pytest.raises(InvalidInput, match="'fake' version 2 is a video model"):
            client.extract_image(images["wide"])
        [(source, error)] = list(client.extract_many([images["wide"]]))
    assert source == str(images["wide"]) and isinstance(error, InvalidInput)


def test_frames_of_a_video_go_to_an_image_model_one_per_segment(serving, real_videos):
    with VideoSwinClient(serving.target, "img", max_batch=4) as client:
        info = client.model_info()
        result = client.extract(real_videos["bikes"], frames_per_video=5)
        with pytest.raises(ValueError, match="crops apply to video models"):
            client.extract(real_videos["bikes"], crops=3)
    assert result.frame_indices.tolist() == segment_indices(250, 5)[:, None].tolist()
    assert result.clip_features.shape == (5, 1, 8) and result.to_json()["family"] == contract.IMAGE
    frames = next(iter_views(real_videos["bikes"], Sampling("segments", 1, 1, 5), ImageCrop(info.preprocessing)))
    np.testing.assert_array_equal(result.clip_features[:, 0], expected_features(frames.clips[:, 0, 0]))
    np.testing.assert_allclose(result.features, result.clip_features.mean(axis=(0, 1)), atol=1e-6)
    assert _sizes(serving.faults, contract.IMAGES) == [4, 1]


def test_extract_many_mixes_images_and_videos_with_per_file_failures(serving, images, real_videos):
    sources = [images["wide"], images["corrupt"], real_videos["bigbuckbunny"], images["alpha"]]

    async def run():
        async with AsyncVideoSwinClient(serving.target, "img") as client:
            single = await client.extract_image(images["alpha"])
            many = dict([item async for item in client.extract_many(sources, concurrency=2, frames_per_video=3)])
            return single, many

    single, many = asyncio.run(run())
    with VideoSwinClient(serving.target, "img") as client:
        in_order = list(client.extract_many(sources, frames_per_video=3))
    assert [source for source, _ in in_order] == [str(s) for s in sources]
    for results in (many, dict(in_order)):
        assert isinstance(results[str(images["corrupt"])], ImageError)
        assert results[str(real_videos["bigbuckbunny"])].clip_features.shape == (3, 1, 8)
        np.testing.assert_array_equal(results[str(images["alpha"])].features, single.features)


def test_an_image_through_the_official_stubs_gets_the_clients_features(serving, images):
    """The image path seen from tensorflow-serving-api: the client's preprocessed view, sent by TF's own stubs
    as `images` uint8 [1, H, W, 3], answers the features extract_image returns."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    with VideoSwinClient(serving.target, "img") as client:
        result = client.extract_image(images["tall"])
        view = preprocess_image(read_image(images["tall"]), client.model_info().preprocessing)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "img"
    request.inputs[contract.IMAGES].CopyFrom(tf.make_tensor_proto(view[None]))
    with grpc.insecure_channel(serving.target) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs[contract.FEATURES])[0], result.features)
