"""Clip sampling against hand-computed frame indices (mmaction2 SampleFrames / DenseSampleFrames, test mode)."""

from __future__ import annotations

import numpy as np
import pytest

from vswin.client.sampling import Sampling, clip_offsets, frame_indices, segment_indices


def test_uniform_matches_official_four_clip_test_on_250_frames():
    # span 64; avg_interval = (250 - 64 + 1) / 4 = 46.75; offsets int(46.75*k + 23.375)
    sampling = Sampling("uniform", clip_len=32, frame_interval=2, num_clips=4)
    assert clip_offsets(250, sampling).tolist() == [23, 70, 116, 163]
    indices = frame_indices(250, sampling)
    assert indices.shape == (4, 32)
    assert indices[0].tolist() == list(range(23, 23 + 64, 2))
    assert indices[3, -1] == 163 + 62


def test_uniform_three_clips_of_four_frames_on_100_frames():
    # avg_interval = 97 / 3 = 32.33: 16.17 -> 16, 48.5 -> 48, 80.83 -> 80
    sampling = Sampling("uniform", clip_len=4, frame_interval=1, num_clips=3)
    assert frame_indices(100, sampling).tolist() == [[16, 17, 18, 19], [48, 49, 50, 51], [80, 81, 82, 83]]


def test_uniform_on_exactly_one_span_starts_every_clip_at_zero():
    # 64 > 63 so the first branch runs with avg_interval 0.25: offsets 0.125, 0.375, ... -> 0
    assert clip_offsets(64, Sampling("uniform", 32, 2, 4)).tolist() == [0, 0, 0, 0]


def test_short_video_loops_to_fill_the_clip():
    # 50 frames < span 64: every clip starts at 0 and indices wrap modulo 50
    indices = frame_indices(50, Sampling("uniform", clip_len=32, frame_interval=2, num_clips=2))
    expected = [i % 50 for i in range(0, 64, 2)]
    assert expected[:3] == [0, 2, 4] and expected[25:28] == [0, 2, 4]
    assert indices.tolist() == [expected, expected]


def test_tiny_video_of_three_frames_loops():
    assert frame_indices(3, Sampling("uniform", clip_len=8, frame_interval=1, num_clips=1)).tolist() == [
        [0, 1, 2, 0, 1, 2, 0, 1]
    ]


def test_dense_spreads_starts_over_the_range_that_fits():
    # sample_position = 1 + 300 - 64 = 237; linspace(0, 236, 5) = 0, 59, 118, 177, 236
    sampling = Sampling("dense", clip_len=32, frame_interval=2, num_clips=5)
    assert clip_offsets(300, sampling).tolist() == [0, 59, 118, 177, 236]
    assert frame_indices(300, sampling)[4, -1] == 236 + 62


def test_dense_with_explicit_sample_range_and_short_video():
    assert clip_offsets(100, Sampling("dense", 8, 1, num_clips=4, sample_range=40)).tolist() == [0, 20, 40, 60]
    assert clip_offsets(40, Sampling("dense", 32, 2, num_clips=3)).tolist() == [0, 0, 0]


def test_sliding_windows_every_stride_inside_the_video():
    assert clip_offsets(200, Sampling("sliding", 32, 2)).tolist() == [0, 64, 128]
    assert clip_offsets(200, Sampling("sliding", 32, 2, stride=32)).tolist() == [0, 32, 64, 96, 128]
    assert clip_offsets(1000, Sampling("sliding", 16, 1, stride=250)).tolist() == [0, 250, 500, 750]
    # shorter than one window: a single looped window
    assert frame_indices(50, Sampling("sliding", 32, 2)).shape == (1, 32)


def _get_seq_frames(num_frames: int, clip_len: int) -> list[int]:
    """Video Swin's SampleFrames.get_seq_frames in test mode, element by element as the original writes it."""
    seg_size = float(num_frames - 1) / clip_len
    return [(int(np.round(seg_size * i)) + int(np.round(seg_size * (i + 1)))) // 2 for i in range(clip_len)]


def test_segments_take_the_middle_frame_of_clip_len_equal_segments_in_one_clip():
    """The SSv2 test: SampleFrames(clip_len=32, frame_interval=2, num_clips=1, frame_uniform=True, test_mode=True)."""
    sampling = Sampling("segments", clip_len=32, frame_interval=2, num_clips=1)
    for n in (17, 32, 48, 100, 250, 1001):
        indices = frame_indices(n, sampling)
        assert indices.shape == (1, 32)
        assert indices[0].tolist() == _get_seq_frames(n, 32)
    # half-way rounding goes to even, as np.round: 131 / 4 = 32.75 -> bounds 0, 33, 66 (65.5), 98, 131
    assert segment_indices(132, 4).tolist() == [16, 49, 82, 114]


def test_segments_of_one_frame_spread_single_frames_over_the_video():
    """What an image model gets of a video: num_clips clips of one frame each."""
    indices = frame_indices(250, Sampling("segments", clip_len=1, frame_interval=1, num_clips=5))
    assert indices.shape == (5, 1) and indices[:, 0].tolist() == _get_seq_frames(250, 5)
    assert frame_indices(1, Sampling("segments", clip_len=1, num_clips=3)).tolist() == [[0], [0], [0]]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mode": "random"}, "sampling mode"),
        ({"clip_len": 0}, "clip_len"),
        ({"num_clips": 0}, "num_clips"),
        ({"stride": 0}, "stride"),
    ],
)
def test_bad_sampling_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Sampling(**kwargs)


def test_zero_frames_cannot_be_sampled():
    with pytest.raises(ValueError, match="0 frames"):
        frame_indices(0, Sampling())


def test_indices_are_always_inside_the_video():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 500))
        sampling = Sampling(
            str(rng.choice(["uniform", "dense", "sliding", "segments"])),
            clip_len=int(rng.integers(1, 33)),
            frame_interval=int(rng.integers(1, 5)),
            num_clips=int(rng.integers(1, 11)),
        )
        indices = frame_indices(n, sampling)
        assert indices.min() >= 0 and indices.max() < n
