"""Which frames make up each clip: mmaction2's SampleFrames (test mode), dense, sliding windows, segments.

All functions return frame indices [num_clips, clip_len] already wrapped into
[0, num_frames): a video shorter than a clip loops, as SampleFrames' default
`out_of_bound_opt='loop'` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vswin.contract import CLIP_LEN, FRAME_INTERVAL, NUM_CLIPS, SAMPLING_MODES

MODES = SAMPLING_MODES


@dataclass(frozen=True)
class Sampling:
    """How to cut a video into clips.

    - uniform: `num_clips` clips spread evenly over the video, each centred in
      its share (SampleFrames, test_mode=True; the official 4-clip test).
    - dense: `num_clips` clip starts evenly spaced over the first
      `num_frames - sample_range + 1` frames (DenseSampleFrames, test mode, one
      clip per start); `sample_range` defaults to the clip's span.
    - sliding: a clip every `stride` frames (default: the clip's span, so
      windows don't overlap) for per-segment features of long videos; windows
      lie inside the video, `num_clips` is ignored.
    - segments: num_clips x clip_len frames spread over the whole video, one
      from the middle of each of as many equal segments (Video Swin's
      `frame_uniform` SampleFrames in test mode, the SSv2 setting with
      num_clips=1); `frame_interval` is ignored. With clip_len=1 it picks
      num_clips single frames: the frames an image model gets of a video.
    """

    mode: str = "uniform"
    clip_len: int = CLIP_LEN
    frame_interval: int = FRAME_INTERVAL
    num_clips: int = NUM_CLIPS
    stride: int | None = None
    sample_range: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"sampling mode must be one of {MODES}, got {self.mode!r}")
        for name in ("clip_len", "frame_interval", "num_clips"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("stride", "sample_range"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")

    @property
    def span(self) -> int:
        """Frames one clip covers: clip_len * frame_interval (SampleFrames' ori_clip_len)."""
        return self.clip_len * self.frame_interval


def uniform_offsets(num_frames: int, span: int, num_clips: int) -> np.ndarray:
    """SampleFrames._get_test_clips: clip starts centred in num_clips equal shares of the video."""
    avg_interval = (num_frames - span + 1) / float(num_clips)
    if num_frames > span - 1:
        base_offsets = np.arange(num_clips) * avg_interval
        return (base_offsets + avg_interval / 2.0).astype(np.int64)
    return np.zeros((num_clips,), dtype=np.int64)


def dense_offsets(num_frames: int, sample_range: int, num_positions: int) -> np.ndarray:
    """DenseSampleFrames._get_test_clips with one clip per position."""
    sample_position = max(1, 1 + num_frames - sample_range)
    starts = np.linspace(0, sample_position - 1, num=num_positions, dtype=int)
    return (starts % num_frames).astype(np.int64)


def sliding_offsets(num_frames: int, span: int, stride: int) -> np.ndarray:
    """Window starts 0, stride, 2*stride, ... for every window that fits; one window if the video is shorter."""
    return np.arange(0, max(num_frames - span, 0) + 1, stride, dtype=np.int64)


def segment_indices(num_frames: int, count: int) -> np.ndarray:
    """`count` frames, the middle one of each of `count` equal segments of the video (get_seq_frames, test mode)."""
    seg_size = float(num_frames - 1) / count
    starts = np.round(seg_size * np.arange(count)).astype(np.int64)
    ends = np.round(seg_size * np.arange(1, count + 1)).astype(np.int64)
    return (starts + ends) // 2


def clip_offsets(num_frames: int, sampling: Sampling) -> np.ndarray:
    """First frame of every clip of the uniform, dense and sliding modes."""
    if num_frames < 1:
        raise ValueError(f"cannot sample clips from {num_frames} frames")
    if sampling.mode == "uniform":
        return uniform_offsets(num_frames, sampling.span, sampling.num_clips)
    if sampling.mode == "dense":
        return dense_offsets(num_frames, sampling.sample_range or sampling.span, sampling.num_clips)
    return sliding_offsets(num_frames, sampling.span, sampling.stride or sampling.span)


def frame_indices(num_frames: int, sampling: Sampling) -> np.ndarray:
    """Frame indices [num_clips, clip_len] for a video of num_frames frames, looping past the end."""
    if sampling.mode == "segments" and num_frames >= 1:
        return segment_indices(num_frames, sampling.num_clips * sampling.clip_len).reshape(sampling.num_clips, -1)
    offsets = clip_offsets(num_frames, sampling)
    indices = offsets[:, None] + np.arange(sampling.clip_len)[None, :] * sampling.frame_interval
    return np.mod(indices, num_frames)
