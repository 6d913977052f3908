"""Video file -> clip features and a video-level feature, the way the official test pipeline averages them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Full, Queue
from typing import TYPE_CHECKING

import cv2
import numpy as np

from vswin import contract
from vswin.client.errors import VideoSwinClientError
from vswin.client.metadata import ModelInfo
from vswin.client.sampling import Sampling
from vswin.client.video import VideoClips, iter_clip_batches

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
    clips: int = contract.NUM_CLIPS
    crops: int = contract.NUM_CROPS
    frame_interval: int = contract.FRAME_INTERVAL
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

    def batches(self, video: str | Path, info: ModelInfo, group_clips: int) -> Iterator[VideoClips]:
        """Decode and cut one video for this model, in groups of at most `group_clips` clips.

        The clients use their max_batch: a group's clips x crops views then fill
        `crops` whole requests, and memory stays bounded on long videos.
        """
        return iter_clip_batches(
            video,
            self.sampling_for(info),
            (info.height, info.width),
            num_crops=self.crops,
            short_side=self.short_side,
            batch_clips=group_clips,
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


def assemble(parts: list[tuple[VideoClips, np.ndarray]], info: ModelInfo, options: ExtractOptions) -> ExtractResult:
    """Per-view features [clips*crops, C] of each group back to [clips, crops, C], and their mean."""
    clip_features = np.concatenate([f.reshape(*c.clips.shape[:2], -1) for c, f in parts], axis=0)
    first = parts[0][0]
    return ExtractResult(
        video=first.path,
        model=info.name,
        version=info.version,
        signature=info.signature,
        features=clip_features.mean(axis=(0, 1), dtype=np.float64).astype(np.float32),
        clip_features=clip_features,
        clip_starts=np.concatenate([c.starts for c, _ in parts]),
        clip_ends=np.concatenate([c.ends for c, _ in parts]),
        frame_indices=np.concatenate([c.frame_indices for c, _ in parts]),
        num_frames=first.num_frames,
        fps=first.fps,
        options=options,
    )


def flat_views(clips: VideoClips) -> np.ndarray:
    """[K, crops, T, H, W, 3] -> [K*crops, T, H, W, 3]: one batch row per view."""
    return clips.clips.reshape(-1, *clips.clips.shape[2:])


def extract_one(client: VideoSwinClient, video: str | Path, options: ExtractOptions) -> ExtractResult:
    info = client.model_info()
    batches = options.batches(video, info, client.max_batch)
    return assemble([(b, client.features(flat_views(b))) for b in batches], info, options)


_END = object()


def extract_pipelined(
    client: VideoSwinClient, videos: Iterable[str | Path], options: ExtractOptions
) -> Iterator[tuple[str, ExtractResult | Exception]]:
    """Yield (video, result or exception) in order, decoding on a worker thread ahead of the requests.

    The decoder runs at most two batches ahead (its queue is bounded), across
    video boundaries, so the next video decodes while this one is on the server.
    """
    info = client.model_info()
    queue: Queue = Queue(maxsize=2)
    stop = threading.Event()
    crashed: list[BaseException] = []
    decoder = threading.Thread(
        target=_decode_ahead, args=(videos, options, info, client.max_batch, queue, stop, crashed), daemon=True
    )
    decoder.start()
    current, parts, dead = -1, [], False
    try:
        while (entry := queue.get()) is not None:
            number, video, item = entry
            if number != current:
                current, parts, dead = number, [], False
            if dead:
                continue
            if isinstance(item, Exception):
                dead = True
                yield video, item
            elif item is _END:
                yield video, assemble(parts, info, options)
            else:
                try:
                    parts.append((item, client.features(flat_views(item))))
                except EXTRACT_ERRORS as err:
                    dead = True
                    yield video, err
        if crashed:
            raise crashed[0]
    finally:
        stop.set()
        while decoder.is_alive():
            with suppress(Empty):
                queue.get(timeout=0.05)
        decoder.join()


def _decode_ahead(
    videos: Iterable[str | Path],
    options: ExtractOptions,
    info: ModelInfo,
    group_clips: int,
    queue: Queue,
    stop: threading.Event,
    crashed: list[BaseException],
) -> None:
    """Producer: (number, video, batch | _END | per-video error) items, then None.

    Anything else that goes wrong (a bug, not a bad video) lands in `crashed`
    for the consumer to raise.
    """

    def put(item: object) -> bool:
        while not stop.is_set():
            with suppress(Full):
                queue.put(item, timeout=0.05)
                return True
        return False

    try:
        for number, video in enumerate(videos):
            try:
                for batch in options.batches(video, info, group_clips):
                    if not put((number, str(video), batch)):
                        return
                item: object = _END
            except EXTRACT_ERRORS as err:
                item = err
            if not put((number, str(video), item)):
                return
    except BaseException as err:
        crashed.append(err)
    finally:
        put(None)
