"""The clips the load generator sends: random frames or clips cut from a real video, batched per request.

Clips are made once up front (decoding is the client benchmark's subject,
not the server's); each request then takes the next `batch_size` clips
from the pool, and for a float32 signature normalizes them with the model's
mean and std, which is the client-side preprocessing such a caller pays.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from vswin import contract

MEAN = np.array(contract.MEAN, dtype=np.float32)
STD = np.array(contract.STD, dtype=np.float32)


class ClipPool:
    """A ring of uint8 clips [N, T, H, W, 3] handed out as request batches; safe to share between threads."""

    def __init__(self, clips: np.ndarray, dtype: str = "uint8") -> None:
        if clips.dtype != np.uint8 or clips.ndim != 5 or clips.shape[-1] != 3 or len(clips) == 0:
            raise ValueError(f"clip pool needs uint8 [N, T, H, W, 3] with N >= 1, got {clips.dtype} {list(clips.shape)}")
        if dtype not in ("uint8", "float32"):
            raise ValueError(f"payload dtype must be uint8 frames or float32 clips, got {dtype!r}")
        self.clips = clips
        self.dtype = dtype
        self._next = 0
        self._lock = threading.Lock()

    def batch(self, size: int) -> np.ndarray:
        """The next `size` clips, as uint8 frames or normalized float32 clips."""
        with self._lock:
            start = self._next
            self._next = (start + size) % len(self.clips)
        index = np.arange(start, start + size) % len(self.clips)
        frames = self.clips[index]
        if self.dtype == "uint8":
            return frames
        return (frames.astype(np.float32) - MEAN) / STD


def random_clips(clip_shape: tuple[int, int, int], count: int = 4, seed: int = 0) -> np.ndarray:
    """`count` random uint8 clips [count, T, H, W, 3]."""
    t, h, w = clip_shape
    return np.random.default_rng(seed).integers(0, 256, size=(count, t, h, w, 3), dtype=np.uint8)


def video_clips(video: str | Path, clip_shape: tuple[int, int, int], count: int = 4) -> np.ndarray:
    """`count` center-cropped clips of the model's geometry, sampled uniformly with the client's own pipeline."""
    from vswin.client.sampling import Sampling
    from vswin.client.video import load_clips

    t, h, w = clip_shape
    loaded = load_clips(video, Sampling("uniform", clip_len=t, frame_interval=contract.FRAME_INTERVAL, num_clips=count), (h, w))
    return np.ascontiguousarray(loaded.clips[:, 0])
