"""Client-side preprocessing throughput: decode + sample + resize + crop + serialize, per core.

Answers "how many client cores feed one GPU": the client's own pipeline
(vswin.client.video.load_clips, then a PredictRequest serialized to bytes)
is run on one video again and again in this process, and clips per second
are reported both against wall time and against this process's CPU time,
so the per-core figure holds even when OpenCV or FFmpeg use extra threads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vswin import contract


@dataclass(frozen=True)
class PreprocessSettings:
    """The clip geometry and sampling of the official test pipeline unless told otherwise."""

    clip_len: int = contract.CLIP_LEN
    size: int = contract.CROP_SIZE
    frame_interval: int = contract.FRAME_INTERVAL
    clips: int = contract.NUM_CLIPS
    crops: int = contract.NUM_CROPS
    repeats: int = 3
    sampling: str = "uniform"

    def __post_init__(self) -> None:
        if self.crops not in (1, 3):
            raise ValueError(f"crops must be 1 or 3, got {self.crops}")
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {self.repeats}")


@dataclass(frozen=True)
class PreprocessResult:
    video: str
    views: int  # clips x crops sent per pass, each one [T, size, size, 3] request item
    repeats: int
    decode_s: float  # median per pass: decode + sample + resize + crop
    serialize_s: float  # median per pass: PredictRequest bytes for all views
    request_bytes: int
    wall_clips_per_s: float
    cpu_clips_per_s: float  # clips per CPU-second of this process: per-core throughput
    cpu_utilization: float  # CPU seconds / wall seconds (above 1 means the decoder used several cores)


def measure(video: str | Path, settings: PreprocessSettings) -> PreprocessResult:
    """Run the client's pipeline `repeats` times on `video` (after one unmeasured pass)."""
    from vswin.client import requests as rq
    from vswin.client.sampling import Sampling
    from vswin.client.video import load_clips

    sampling = Sampling(settings.sampling, settings.clip_len, settings.frame_interval, settings.clips)
    crop = (settings.size, settings.size)
    model = rq.ModelRef("bench")

    def one_pass() -> tuple[float, float, int, int]:
        t0 = time.perf_counter()
        loaded = load_clips(video, sampling, crop, num_crops=settings.crops)
        t1 = time.perf_counter()
        views = loaded.clips.reshape(-1, *loaded.clips.shape[2:])
        payload = rq.encode_predict_request(model, contract.SERVING_DEFAULT, {contract.FRAMES: views})
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1, len(views), len(payload)

    one_pass()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    passes = [one_pass() for _ in range(settings.repeats)]
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    views = passes[0][2]
    total = views * settings.repeats
    return PreprocessResult(
        video=str(video),
        views=views,
        repeats=settings.repeats,
        decode_s=float(np.median([p[0] for p in passes])),
        serialize_s=float(np.median([p[1] for p in passes])),
        request_bytes=passes[0][3],
        wall_clips_per_s=total / wall,
        cpu_clips_per_s=total / cpu if cpu > 0 else float("nan"),
        cpu_utilization=cpu / wall,
    )
