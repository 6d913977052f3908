"""Decode and sample videos in the workers, with the client's own code: URI -> views + one VideoMeta."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.localfilesystem import LocalFileSystem
from apache_beam.utils import shared

from vswin.beam import metrics
from vswin.beam.elements import VideoMeta, View
from vswin.client.errors import VideoError
from vswin.client.extract import ExtractOptions, flat_views

META = "meta"


@contextlib.contextmanager
def local_file(uri: str) -> Iterator[str]:
    """A local path OpenCV can open: the file itself, or a temporary copy of a gs://, s3://, ... object."""
    if isinstance(FileSystems.get_filesystem(uri), LocalFileSystem):
        yield uri.removeprefix("file://")
        return
    suffix = os.path.splitext(uri.rsplit("/", 1)[-1])[1]
    with tempfile.NamedTemporaryFile(suffix=suffix) as copy:
        with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as source:
            shutil.copyfileobj(source, copy, length=1 << 20)
        copy.flush()
        metrics.counter(metrics.BYTES_READ).inc(copy.tell())
        yield copy.name


@beam.typehints.with_output_types(View, **{META: tuple[str, VideoMeta]})
class DecodeVideos(beam.DoFn):
    """URI -> its views (main output) then, once the whole video decoded, its VideoMeta (output `meta`).

    Decoding, sampling, resizing and cropping are vswin.client's (ExtractOptions
    over iter_clip_batches), in groups of `group_clips` clips so a long video
    never sits in memory whole. The clip geometry comes from the model
    (`model.info()`), looked up once per worker process.
    """

    def __init__(self, model, options: ExtractOptions, group_clips: int) -> None:
        self._model = model
        self._options = options
        self._group_clips = group_clips
        self._shared = shared.Shared()
        self._info = None

    def setup(self) -> None:
        self._info = self._shared.acquire(lambda: _Counted(self._model.info()), tag=repr(self._model))

    def process(self, uri: str) -> Iterator[View | beam.pvalue.TaggedOutput]:
        if self._info.first_use():
            metrics.counter(metrics.DECODE_SETUPS).inc()
        info = self._info.value
        offset, indices, last = 0, [], None
        with local_file(uri) as path:
            try:
                for clips in self._options.batches(path, info, self._group_clips):
                    views = flat_views(clips)
                    for i, view in enumerate(views):
                        yield View(uri, offset + i, view)
                    offset += len(views)
                    indices.append(clips.frame_indices)
                    last = clips
            except VideoError as err:
                if err.path == uri:
                    raise
                raise VideoError(uri, err.reason) from None  # name the video, not its temporary copy
        meta = VideoMeta(uri, info.name, info.signature, offset, np.concatenate(indices), last.num_frames, last.fps)
        yield beam.pvalue.TaggedOutput(META, (uri, meta))


class _Counted:
    """A value shared by a process's threads, and whether its first user has counted it yet."""

    def __init__(self, value) -> None:
        self.value = value
        self.first_use = metrics.FirstUse()
