"""client.extract / extract_many (sync and asyncio) against the in-process server, on real videos."""

from __future__ import annotations

import asyncio
import threading
import time

import grpc
import numpy as np
import pytest

from tests.client.fake_serving import FakeModel, FakeServer, fake_features
from vswin.client import AsyncVideoSwinClient, ExtractOptions, ServerUnavailable, VideoError, VideoSwinClient
from vswin.client.sampling import Sampling
from vswin.client.video import load_clips


def _expected(video, sampling_mode="uniform", clips=4, crops=3, frame_interval=2):
    loaded = load_clips(video, Sampling(sampling_mode, 4, frame_interval, clips), (32, 32), num_crops=crops)
    views = loaded.clips.reshape(-1, 4, 32, 32, 3)
    return loaded, fake_features(views).reshape(loaded.clips.shape[0], crops, -1)


def test_extract_returns_clip_and_video_features_and_times(fake_server, real_videos):
    with VideoSwinClient(fake_server.target, "fake", max_batch=5) as client:
        result = client.extract(real_videos["bikes"], clips=4, crops=3, frame_interval=2)
    loaded, expected = _expected(real_videos["bikes"])
    assert result.clip_features.shape == (4, 3, 8)
    np.testing.assert_allclose(result.clip_features, expected, atol=1e-6)
    np.testing.assert_allclose(result.features, expected.mean(axis=(0, 1)), atol=1e-6)
    np.testing.assert_array_equal(result.frame_indices, loaded.frame_indices)
    # 250 frames, span 4*2 = 8: avg_interval (250-8+1)/4 = 60.75 -> offsets int(60.75k + 30.375) = 30, 91, 151, 212
    assert result.frame_indices[:, 0].tolist() == [30, 91, 151, 212]
    np.testing.assert_allclose(result.clip_starts, [1.2, 3.64, 6.04, 8.48])
    np.testing.assert_allclose(result.clip_ends, [(30 + 7) / 25, (91 + 7) / 25, (151 + 7) / 25, (212 + 7) / 25])
    assert (result.model, result.version, result.num_clips) == ("fake", 2, 12)
    sidecar = result.to_json()
    assert sidecar["clip_start_frames"] == [30, 91, 151, 212] and sidecar["version"] == 2
    sizes = [r.inputs["frames"].tensor_shape.dim[0].size for r in fake_server.servicer.requests]
    assert sizes == [5, 5, 2]


def test_extract_sliding_gives_per_segment_features(fake_server, real_videos):
    with VideoSwinClient(fake_server.target, "fake") as client:
        result = client.extract(real_videos["bigbuckbunny"], sampling="sliding", crops=1, frame_interval=4, stride=32)
    # 132 frames, span 16, stride 32: starts 0, 32, 64, 96 (116 would end past 132)
    assert result.frame_indices[:, 0].tolist() == [0, 32, 64, 96]
    assert result.clip_features.shape == (4, 1, 8)
    np.testing.assert_allclose(result.clip_starts, [0, 1.28, 2.56, 3.84])


def test_extract_many_overlaps_decode_with_requests_and_reports_failures(fake_server, real_videos, tmp_path, monkeypatch):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    videos = [real_videos["bikes"], real_videos["bigbuckbunny"], broken, real_videos["bikes"]]
    events: list[tuple[str, str, float]] = []
    original = ExtractOptions.batches

    def recording_batches(self, video, info, group_clips):
        events.append(("decode", str(video), time.monotonic()))
        return original(self, video, info, group_clips)

    monkeypatch.setattr(ExtractOptions, "batches", recording_batches)
    fake_server.servicer.delay = 0.3
    with VideoSwinClient(fake_server.target, "fake") as client:
        results = list(client.extract_many(videos, clips=2, crops=1))
    assert [v for v, _ in results] == [str(v) for v in videos]
    assert isinstance(results[2][1], VideoError) and "broken.mp4" in str(results[2][1])
    np.testing.assert_allclose(results[0][1].features, results[3][1].features)
    # bigbuckbunny started decoding before the first Predict (of bikes, 0.3 s long) had finished
    first_predict = [t for name, t in fake_server.servicer.calls if name == "Predict"][0]
    bunny_decode = [t for kind, video, t in events if video.endswith("bigbuckbunny.mp4")][0]
    assert bunny_decode < first_predict + 0.3


def test_async_client_matches_sync_and_handles_concurrency(fake_server, real_videos, tmp_path):
    missing = tmp_path / "missing.mp4"

    async def run():
        async with AsyncVideoSwinClient(fake_server.target, "fake", max_batch=2) as client:
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
    np.testing.assert_allclose(single.clip_features, expected, atol=1e-6)
    by_video = dict(many)
    assert set(by_video) == {str(real_videos["bikes"]), str(missing), str(real_videos["bigbuckbunny"])}
    assert isinstance(by_video[str(missing)], VideoError) and "no such file" in str(by_video[str(missing)])
    np.testing.assert_allclose(by_video[str(real_videos["bikes"])].features, single.features, atol=1e-6)
    sizes = [r.inputs["frames"].tensor_shape.dim[0].size for r in fake_server.servicer.requests]
    assert max(sizes) == 2


def test_async_retries_then_recovers_and_halves_rejected_batches(free_port):
    server = FakeServer(free_port, FakeModel(max_batch=2)).start()
    server.servicer.failures = [grpc.StatusCode.UNAVAILABLE]
    frames = np.random.default_rng(0).integers(0, 256, (5, 4, 32, 32, 3), dtype=np.uint8)

    async def run():
        from vswin.client import RetryPolicy

        retry = RetryPolicy(max_attempts=3, initial_backoff=0.05, max_backoff=0.1)
        async with AsyncVideoSwinClient(server.target, "fake", max_batch=4, retry=retry) as client:
            await client.model_info()
            return await client.features(frames), client.max_batch

    try:
        features, max_batch = asyncio.run(run())
    finally:
        server.stop()
    np.testing.assert_allclose(features, fake_features(frames), atol=1e-6)
    assert max_batch == 2


def test_async_unavailable_server_raises_server_unavailable(free_port):
    async def run():
        from vswin.client import RetryPolicy

        retry = RetryPolicy(max_attempts=2, initial_backoff=0.05, max_backoff=0.1)
        async with AsyncVideoSwinClient(f"127.0.0.1:{free_port}", "fake", timeout=2.0, retry=retry) as client:
            await client.model_info()

    with pytest.raises(ServerUnavailable) as err:
        asyncio.run(run())
    assert err.value.code == grpc.StatusCode.UNAVAILABLE


def test_async_deadline_exceeded_when_server_is_slow(fake_server):
    from vswin.client import DeadlineExceeded

    frames = np.random.default_rng(0).integers(0, 256, (1, 4, 32, 32, 3), dtype=np.uint8)

    async def run():
        async with AsyncVideoSwinClient(fake_server.target, "fake", timeout=0.3) as client:
            await client.model_info()
            fake_server.servicer.delay = 1.0
            start = time.monotonic()
            with pytest.raises(DeadlineExceeded) as err:
                await client.features(frames)
            return time.monotonic() - start, err.value.code

    elapsed, code = asyncio.run(run())
    assert elapsed < 0.9 and code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_long_sliding_extract_goes_in_groups_of_max_batch_clips(fake_server, real_videos):
    options = {"sampling": "sliding", "crops": 3, "frame_interval": 2, "stride": 8}
    with VideoSwinClient(fake_server.target, "fake", max_batch=4) as client:
        result = client.extract(real_videos["bikes"], **options)
    # 250 frames, span 8, stride 8: windows at 0, 8, ..., 240 -> 31 clips, 93 views
    loaded = load_clips(real_videos["bikes"], Sampling("sliding", 4, 2, stride=8), (32, 32), num_crops=3)
    assert result.clip_features.shape == (31, 3, 8)
    np.testing.assert_allclose(
        result.clip_features, fake_features(loaded.clips.reshape(-1, 4, 32, 32, 3)).reshape(31, 3, 8), atol=1e-6
    )
    np.testing.assert_allclose(result.clip_starts, np.arange(0, 241, 8) / 25)
    sizes = [r.inputs["frames"].tensor_shape.dim[0].size for r in fake_server.servicer.requests]
    assert sum(sizes) == 93 and max(sizes) == 4
