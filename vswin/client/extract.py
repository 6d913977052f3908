"""Video file -> clip features and a video-level feature, the way the official test pipeline averages them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from vswin.client.errors import VideoSwinClientError
from vswin.client.metadata import ModelInfo
from vswin.client.sampling import Sampling
from vswin.client.video import VideoClips, load_clips

if TYPE_CHECKING:
    from vswin.client.client import VideoSwinClient


# What can go wrong with one video in a batch without stopping the others (the caller reports it).
EXTRACT_ERRORS = (VideoSwinClientError, ValueError, OSError, cv2.error)


@dataclass(frozen=True)
class ExtractOptions:
    """How to cut videos into clips. The clip length and crop size come from the model (GetModelMetadata).

    sampling/clips/frame_interval/stride/sample_range: see Sampling. crops: 1
    (center) or 3 (ThreeCrop). short_side: resize target before cropping
    (default: the crop size, as in the official test pipeline).
    """

    sampling: str = "uniform"
    clips: int = 4
    crops: int = 3
    frame_interval: int = 2
    stride: int | None = None
    sample_range: int | None = None
    short_side: int | None = None

    def sampling_for(self, info: ModelInfo) -> Sampling:
        return Sampling(
            mode=self.sampling,
            clip_len=info.clip_len,
            frame_interval=self.frame_interval,
            num_clips=self.clips,
            stride=self.stride,
            sample_range=self.sample_range,
        )

    def load(self, video: str | Path, info: ModelInfo) -> VideoClips:
        """Decode and cut one video for this model."""
        return load_clips(
            video, self.sampling_for(info), (info.height, info.width), num_crops=self.crops, short_side=self.short_side
        )


@dataclass(frozen=True)
class ExtractResult:
    """Features of one video.

    features [C]: mean over clips and crops (the original averages test-time
    views the same way); clip_features [num_clips, num_crops, C];
    clip_starts/clip_ends in seconds; frame_indices [num_clips, T].
    """

    video: str
    model: str
    version: int
    signature: str
    features: np.ndarray
    clip_features: np.ndarray
    clip_starts: np.ndarray
    clip_ends: np.ndarray
    frame_indices: np.ndarray
    num_frames: int
    fps: float
    options: ExtractOptions

    @property
    def num_clips(self) -> int:
        return int(self.clip_features.shape[0] * self.clip_features.shape[1])

    def to_json(self, include_features: bool = False) -> dict:
        """The sidecar record: clip times, model and version, sampling settings (and features if asked)."""
        record = {
            "video": self.video,
            "model": self.model,
            "version": self.version,
            "signature": self.signature,
            "feature_dim": int(self.features.shape[-1]),
            "num_frames": self.num_frames,
            "fps": self.fps,
            "sampling": self.options.sampling,
            "frame_interval": self.options.frame_interval,
            "crops": self.options.crops,
            "clip_len": int(self.frame_indices.shape[1]),
            "clip_starts": [round(float(t), 6) for t in self.clip_starts],
            "clip_ends": [round(float(t), 6) for t in self.clip_ends],
            "clip_start_frames": self.frame_indices.min(axis=1).tolist(),
        }
        if include_features:
            record["features"] = self.features.tolist()
            record["clip_features"] = self.clip_features.tolist()
        return record

    def dumps(self) -> str:
        return json.dumps(self.to_json(include_features=True))


def assemble(clips: VideoClips, features: np.ndarray, info: ModelInfo, options: ExtractOptions) -> ExtractResult:
    """Reshape flat per-view features [K*crops, C] back to clips and crops and average them."""
    num_clips, num_crops = clips.clips.shape[:2]
    clip_features = features.reshape(num_clips, num_crops, -1)
    return ExtractResult(
        video=clips.path,
        model=info.name,
        version=info.version,
        signature=info.signature,
        features=clip_features.mean(axis=(0, 1), dtype=np.float64).astype(np.float32),
        clip_features=clip_features,
        clip_starts=clips.starts,
        clip_ends=clips.ends,
        frame_indices=clips.frame_indices,
        num_frames=clips.num_frames,
        fps=clips.fps,
        options=options,
    )


def flat_views(clips: VideoClips) -> np.ndarray:
    """[K, crops, T, H, W, 3] -> [K*crops, T, H, W, 3]: one batch row per view."""
    return clips.clips.reshape(-1, *clips.clips.shape[2:])


def extract_one(client: VideoSwinClient, video: str | Path, options: ExtractOptions) -> ExtractResult:
    info = client.model_info()
    clips = options.load(video, info)
    return assemble(clips, client.features(flat_views(clips)), info, options)


def extract_pipelined(
    client: VideoSwinClient, videos: Iterable[str | Path], options: ExtractOptions
) -> Iterator[tuple[str, ExtractResult | Exception]]:
    """Yield (video, result or exception) in order; video i+1 decodes on a worker thread while i is on the server."""
    info = client.model_info()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vswin-decode") as pool:
        pending: Future | None = None
        previous = ""
        for video in videos:
            upcoming = pool.submit(options.load, video, info)
            if pending is not None:
                yield previous, _finish(client, pending, info, options)
            pending, previous = upcoming, str(video)
        if pending is not None:
            yield previous, _finish(client, pending, info, options)


def _finish(client: VideoSwinClient, decoding: Future, info: ModelInfo, options: ExtractOptions) -> ExtractResult | Exception:
    try:
        clips = decoding.result()
        return assemble(clips, client.features(flat_views(clips)), info, options)
    except EXTRACT_ERRORS as err:
        return err
