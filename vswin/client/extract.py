"""Files -> features: a video's clip features and their mean, as the official test pipeline averages them;
an image's features; and the frames of a video sent to an image model ("frame features").

How a file is cut into views comes from the model: its export's
preprocessing (ModelInfo.preprocessing), overridden by ExtractOptions.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Full, Queue
from typing import TYPE_CHECKING, Union

import cv2
import numpy as np

from vswin import contract
from vswin.client.errors import InvalidInput, VideoSwinClientError
from vswin.client.image import ImageCrop, ImageView, is_image_file, load_image
from vswin.client.metadata import ModelInfo
from vswin.client.sampling import Sampling
from vswin.client.video import ClipCrops, VideoClips, iter_views

if TYPE_CHECKING:
    from vswin.client.client import VideoSwinClient


# What can go wrong with one file in a batch without stopping the others (the caller reports it).
EXTRACT_ERRORS = (VideoSwinClientError, ValueError, OSError, cv2.error)

# What a file becomes before it is sent: groups of a video's clips, or one image.
Views = Union[VideoClips, ImageView]

_VIDEO_SETTINGS = ("sampling", "clips", "crops", "frame_interval", "stride", "sample_range", "short_side")


@dataclass(frozen=True)
class ExtractOptions:
    """How to cut files into views; a setting left None is the model's (its export's preprocessing).

    Video models: sampling/clips/frame_interval/stride/sample_range (see
    Sampling), crops 1 (center) or 3 (ThreeCrop), short_side (resize target
    before cropping). Image models: each image gets the evaluation's resize
    and center crop; a video gives `frames_per_video` frames (default
    contract.FRAMES_PER_VIDEO), one from the middle of each of as many equal
    segments, each as an image.
    """

    sampling: str | None = None
    clips: int | None = None
    crops: int | None = None
    frame_interval: int | None = None
    stride: int | None = None
    sample_range: int | None = None
    short_side: int | None = None
    frames_per_video: int | None = None

    def resolve(self, info: ModelInfo) -> ExtractOptions:
        """These options with every unset setting taken from the model's preprocessing; ValueError for
        settings that do not apply to the model's family."""
        prep = info.preprocessing
        if info.family == contract.IMAGE:
            frames = self.frames_per_video or contract.FRAMES_PER_VIDEO
            resolved = ExtractOptions("segments", frames, 1, 1, frames_per_video=frames)
            given = [name for name in _VIDEO_SETTINGS if getattr(self, name) not in (None, getattr(resolved, name))]
            if given:
                raise ValueError(f"{', '.join(given)} apply to video models; {info.name!r} is an image model "
                                 f"(frames_per_video sets how many frames of a video it gets)")  # fmt: skip
            return resolved
        if self.frames_per_video is not None:
            raise ValueError(f"frames_per_video applies to image models; {info.name!r} is a video model")
        return dataclasses.replace(
            self,
            sampling=self.sampling or prep.sampling,
            clips=self.clips or prep.num_clips,
            crops=self.crops or prep.num_crops,
            frame_interval=self.frame_interval or prep.frame_interval,
            short_side=self.short_side or prep.resize_to,
        )

    def sampling_for(self, info: ModelInfo) -> Sampling:
        """The frames of a video to take (of resolved options): clips of the model's T, or single frames."""
        return Sampling(mode=self.sampling, clip_len=info.clip_len, frame_interval=self.frame_interval,
                        num_clips=self.clips, stride=self.stride, sample_range=self.sample_range)  # fmt: skip

    def batches(self, source: str | Path, info: ModelInfo, group_clips: int) -> Iterator[Views]:
        """Decode and cut one file for this model: an image as one view, a video in groups of at most
        `group_clips` clips (the clients use their max_batch: a group's clips x crops views then fill `crops`
        whole requests, and memory stays bounded on long videos). See flat_views for the request rows."""
        if is_image_file(source):
            require_image_model(info)
            yield load_image(source, info.preprocessing)
            return
        options = self.resolve(info)
        if info.family == contract.IMAGE:
            frames = ImageCrop(info.preprocessing)
        else:
            frames = ClipCrops((info.height, info.width), options.crops, options.short_side)
        yield from iter_views(source, options.sampling_for(info), frames, batch_clips=group_clips)


@dataclass(frozen=True)
class ExtractResult:
    """Features of one video.

    features [C]: mean over clips and crops (the original averages test-time
    views the same way); clip_features [num_clips, num_crops, C] (for an image
    model: [frames, 1, C], one frame per "clip"); clip_starts/clip_ends in
    seconds; frame_indices [num_clips, T]; options as resolved for the model.
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
    family: str = contract.VIDEO

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
            "family": self.family,
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


@dataclass(frozen=True)
class ImageResult:
    """Features [C] of one image, with the original's size and the preprocessing it was given."""

    image: str
    model: str
    version: int
    signature: str
    features: np.ndarray
    height: int
    width: int
    preprocessing: contract.Preprocessing

    @property
    def num_clips(self) -> int:
        return 1

    def to_json(self, include_features: bool = False) -> dict:
        record = {
            "image": self.image,
            "model": self.model,
            "version": self.version,
            "signature": self.signature,
            "family": contract.IMAGE,
            "feature_dim": int(self.features.shape[-1]),
            "height": self.height,
            "width": self.width,
            "preprocessing": self.preprocessing.to_dict(),
        }
        if include_features:
            record["features"] = self.features.tolist()
        return record

    def dumps(self) -> str:
        return json.dumps(self.to_json(include_features=True))


Result = Union[ExtractResult, ImageResult]


def require_image_model(info: ModelInfo) -> None:
    """InvalidInput unless `info` is an image model (what images need)."""
    if info.family != contract.IMAGE:
        raise InvalidInput(f"{info.name!r} version {info.version} is a {info.family} model; images need an image model")


def flat_views(part: Views, view_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """One request row per view of a part: a video's clips [clips * crops, T, H, W, 3], or their single frames
    [clips * crops, H, W, 3] for an image model's `view_shape` (H, W, 3); an image's [1, H, W, 3]."""
    if isinstance(part, ImageView):
        return part.view[None]
    flat = part.clips.reshape(-1, *part.clips.shape[2:])
    return flat[:, 0] if view_shape is not None and len(view_shape) == 3 else flat


def assemble(parts: list[tuple[Views, np.ndarray]], info: ModelInfo, options: ExtractOptions) -> Result:
    """Per-view features of each part back into one file's result: an image's [C], or a video's clips (with
    the options as resolved for the model)."""
    first = parts[0][0]
    if isinstance(first, ImageView):
        return ImageResult(first.path, info.name, info.version, info.signature, parts[0][1][0],
                           first.height, first.width, info.preprocessing)  # fmt: skip
    clip_features = np.concatenate([f.reshape(*c.clips.shape[:2], -1) for c, f in parts], axis=0)
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
        options=options.resolve(info),
        family=info.family,
    )


def extract_one(client: VideoSwinClient, source: str | Path, options: ExtractOptions) -> Result:
    info = client.model_info()
    options = options.resolve(info)
    parts = options.batches(source, info, client.max_batch)
    return assemble([(p, client.features(flat_views(p, info.view_shape))) for p in parts], info, options)


_END = object()


def extract_pipelined(
    client: VideoSwinClient, sources: Iterable[str | Path], options: ExtractOptions
) -> Iterator[tuple[str, Result | Exception]]:
    """Yield (file, result or exception) in order, decoding on a worker thread ahead of the requests.

    The decoder runs at most two parts ahead (its queue is bounded), across
    file boundaries, so the next file decodes while this one is on the server.
    """
    info = client.model_info()
    options = options.resolve(info)
    queue: Queue = Queue(maxsize=2)
    stop = threading.Event()
    crashed: list[BaseException] = []
    decoder = threading.Thread(
        target=_decode_ahead, args=(sources, options, info, client.max_batch, queue, stop, crashed), daemon=True
    )
    decoder.start()
    current, parts, dead = -1, [], False
    try:
        while (entry := queue.get()) is not None:
            number, source, item = entry
            if number != current:
                current, parts, dead = number, [], False
            if dead:
                continue
            if isinstance(item, Exception):
                dead = True
                yield source, item
            elif item is _END:
                yield source, assemble(parts, info, options)
            else:
                try:
                    parts.append((item, client.features(flat_views(item, info.view_shape))))
                except EXTRACT_ERRORS as err:
                    dead = True
                    yield source, err
        if crashed:
            raise crashed[0]
    finally:
        stop.set()
        while decoder.is_alive():
            with suppress(Empty):
                queue.get(timeout=0.05)
        decoder.join()


def _decode_ahead(
    sources: Iterable[str | Path],
    options: ExtractOptions,
    info: ModelInfo,
    group_clips: int,
    queue: Queue,
    stop: threading.Event,
    crashed: list[BaseException],
) -> None:
    """Producer: (number, file, part | _END | per-file error) items, then None.

    Anything else that goes wrong (a bug, not a bad file) lands in `crashed`
    for the consumer to raise.
    """

    def put(item: object) -> bool:
        while not stop.is_set():
            with suppress(Full):
                queue.put(item, timeout=0.05)
                return True
        return False

    try:
        for number, source in enumerate(sources):
            try:
                for part in options.batches(source, info, group_clips):
                    if not put((number, str(source), part)):
                        return
                item: object = _END
            except EXTRACT_ERRORS as err:
                item = err
            if not put((number, str(source), item)):
                return
    except BaseException as err:
        crashed.append(err)
    finally:
        put(None)
