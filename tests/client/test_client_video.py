"""Decoding real and broken videos into clips of the model's geometry."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vswin.client import VideoError
from vswin.client.sampling import Sampling
from vswin.client.video import _FrameCache, crop_offsets, iter_clip_batches, load_clips, probe, resize_short_side


def _write_video(path, values, size=(48, 40), fps=10.0):
    """An MJPG AVI whose frame i is the flat gray level values[i]."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for value in values:
        writer.write(np.full((size[1], size[0], 3), value, np.uint8))
    writer.release()
    return path


def _all_frames_rgb(path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


def test_probe_reads_the_real_videos_headers(real_videos):
    bikes, bunny = probe(real_videos["bikes"]), probe(real_videos["bigbuckbunny"])
    assert (bikes.num_frames, bikes.width, bikes.height, bikes.fps) == (250, 640, 272, 25.0)
    assert (bunny.num_frames, bunny.width, bunny.height) == (132, 1280, 720)


def test_grab_retrieve_skipping_returns_the_same_frames_as_reading_everything(real_videos):
    reference = _all_frames_rgb(real_videos["bikes"])
    assert len(reference) == 250
    # span 200: avg_interval 51, offset int(25.5) = 25 -> frames 25, 65, 105, 145, 185; full 640x272 frames
    clips = load_clips(real_videos["bikes"], Sampling("uniform", 5, 40, 1), crop=(272, 640), short_side=272)
    assert clips.frame_indices.tolist() == [[25, 65, 105, 145, 185]]
    for t, index in enumerate(clips.frame_indices[0]):
        np.testing.assert_array_equal(clips.clips[0, 0, t], reference[index])


def test_frames_passed_on_the_way_are_kept_for_later_groups(real_videos):
    reference = _all_frames_rgb(real_videos["bikes"])
    cache = _FrameCache(real_videos["bikes"], {7: 0, 2: 1, 5: 1}, resize=lambda frame: resize_short_side(frame, 272))
    try:
        np.testing.assert_array_equal(cache.get(7), reference[7])
        assert sorted(cache.frames) == [2, 5, 7] and cache.position == 8
        cache.release(0)
        assert sorted(cache.frames) == [2, 5]
        np.testing.assert_array_equal(cache.get(2), reference[2])
        assert cache.position == 8
    finally:
        cache.close()


def test_sliding_batches_equal_all_at_once_and_hold_few_frames(real_videos, monkeypatch):
    sampling = Sampling("sliding", clip_len=8, frame_interval=2, stride=16)  # 15 windows over 250 frames
    whole = load_clips(real_videos["bikes"], sampling, crop=(32, 32), num_crops=3)
    held: list[int] = []
    original = _FrameCache.release

    def recording_release(self, group):
        held.append(len(self.frames))
        original(self, group)

    monkeypatch.setattr(_FrameCache, "release", recording_release)
    batches = list(iter_clip_batches(real_videos["bikes"], sampling, crop=(32, 32), num_crops=3, batch_clips=2))
    assert [len(b.clips) for b in batches] == [2] * 7 + [1]
    np.testing.assert_array_equal(np.concatenate([b.clips for b in batches]), whole.clips)
    np.testing.assert_array_equal(np.concatenate([b.frame_indices for b in batches]), whole.frame_indices)
    assert max(held) <= 16  # two windows of 8 frames, never the whole video


def test_short_side_resize_keeps_ratio_with_mmcv_rounding():
    assert resize_short_side(np.zeros((272, 640, 3), np.uint8), 224).shape == (224, 527, 3)  # 640*224/272 = 527.06
    assert resize_short_side(np.zeros((720, 1280, 3), np.uint8), 224).shape == (224, 398, 3)  # 398.2
    assert resize_short_side(np.zeros((640, 360, 3), np.uint8), 64).shape == (114, 64, 3)  # 113.8 -> 114
    same = np.zeros((224, 300, 3), np.uint8)
    assert resize_short_side(same, 224) is same


def test_three_crops_go_along_the_long_side_like_three_crop():
    # landscape 224x527: step (527-224)//2 = 151 -> left 0, right 302, middle 151
    assert crop_offsets(224, 527, (224, 224), 3) == [(0, 0), (0, 302), (0, 151)]
    # portrait 398x224: top, bottom, middle
    assert crop_offsets(398, 224, (224, 224), 3) == [(0, 0), (174, 0), (87, 0)]
    # center crop after resizing to 256: (256-224)//2 = 16 from the top, (455-224)//2 = 115 from the left
    assert crop_offsets(256, 455, (224, 224), 1) == [(16, 115)]
    with pytest.raises(ValueError, match="crops must be 1"):
        crop_offsets(224, 300, (224, 224), 2)
    with pytest.raises(ValueError, match="larger than the resized frame"):
        crop_offsets(200, 300, (224, 224), 1)


def test_load_clips_on_bikes_follows_the_official_test_pipeline(real_videos):
    clips = load_clips(real_videos["bikes"], Sampling("uniform", 32, 2, 4), crop=(224, 224), num_crops=3)
    assert clips.clips.shape == (4, 3, 32, 224, 224, 3) and clips.clips.dtype == np.uint8
    assert clips.frame_indices[:, 0].tolist() == [23, 70, 116, 163]
    np.testing.assert_allclose(clips.starts, [23 / 25, 70 / 25, 116 / 25, 163 / 25])
    np.testing.assert_allclose(clips.ends, [(23 + 63) / 25, (70 + 63) / 25, (116 + 63) / 25, (163 + 63) / 25])
    reference = _all_frames_rgb(real_videos["bikes"])
    resized = cv2.resize(reference[70 + 2 * 5], (527, 224), interpolation=cv2.INTER_LINEAR)
    for crop, left in enumerate([0, 302, 151]):
        np.testing.assert_array_equal(clips.clips[1, crop, 5], resized[:, left : left + 224])


def test_load_clips_on_720p_with_non_square_model_geometry(real_videos):
    clips = load_clips(real_videos["bigbuckbunny"], Sampling("uniform", 8, 4, 2), crop=(48, 64), num_crops=1)
    assert clips.clips.shape == (2, 1, 8, 48, 64, 3)
    # 1280x720 -> short side 64 -> 114x64... covers 48x64: the crop is centred
    assert clips.num_frames == 132


def test_short_video_loops_and_keeps_frame_order(tmp_path):
    path = _write_video(tmp_path / "ten.avi", [i * 20 for i in range(10)])
    clips = load_clips(path, Sampling("uniform", clip_len=8, frame_interval=2, num_clips=2), crop=(32, 32))
    assert clips.frame_indices.tolist() == [[0, 2, 4, 6, 8, 0, 2, 4]] * 2
    levels = clips.clips[0, 0, :, 16, 16, 0].astype(int)
    np.testing.assert_allclose(levels, [0, 40, 80, 120, 160, 0, 40, 80], atol=4)


def test_missing_empty_and_garbage_files_raise_video_error_naming_the_file(tmp_path):
    with pytest.raises(VideoError, match=r"nothere\.mp4: no such file"):
        load_clips(tmp_path / "nothere.mp4", Sampling(), (32, 32))
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match=r"empty\.mp4: file is empty"):
        load_clips(tmp_path / "empty.mp4", Sampling(), (32, 32))
    (tmp_path / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(50_000))
    with pytest.raises(VideoError, match=r"garbage\.mp4: OpenCV cannot open it") as err:
        load_clips(tmp_path / "garbage.mp4", Sampling(), (32, 32))
    assert err.value.path.endswith("garbage.mp4")


def test_truncated_mp4_without_its_index_raises_video_error(tmp_path, real_videos):
    data = real_videos["bikes"].read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 3])
    with pytest.raises(VideoError, match=r"cut\.mp4"):
        load_clips(tmp_path / "cut.mp4", Sampling(), (32, 32))


def test_truncated_avi_samples_the_frames_that_decode(tmp_path):
    path = _write_video(tmp_path / "thirty.avi", [i * 8 for i in range(30)])
    data = path.read_bytes()
    cut = tmp_path / "half.avi"
    cut.write_bytes(data[: len(data) // 2])
    assert probe(cut).num_frames == 30
    clips = load_clips(cut, Sampling("uniform", clip_len=4, frame_interval=1, num_clips=1), crop=(32, 32))
    assert 0 < clips.num_frames < 30
    assert clips.frame_indices.max() < clips.num_frames


def test_video_with_zero_frames_raises_video_error(tmp_path):
    path = _write_video(tmp_path / "zero.avi", [])
    with pytest.raises(VideoError, match=r"zero\.avi: no frames"):
        load_clips(path, Sampling(), (32, 32))


def test_stream_ending_after_the_first_group_raises_video_error(tmp_path):
    path = _write_video(tmp_path / "thirty.avi", [i * 8 for i in range(30)])
    cut = tmp_path / "half.avi"
    cut.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    groups = iter_clip_batches(cut, Sampling("sliding", 1, 1, stride=1), crop=(32, 32), batch_clips=1)
    assert next(groups).frame_indices.tolist() == [[0]]
    with pytest.raises(VideoError, match=r"half\.avi: stream ended at frame \d+ of 30"):
        list(groups)
