"""Decode and cut files in the workers, with the client's own code: URI -> views + one FileMeta.

A video becomes clips (video model) or single frames (image model,
`frames_per_video`); an image (jpg, png, webp) one view with the evaluation's
resize and center crop. Which file is which goes by the suffix, as in
`vswin extract`.
"""

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
from vswin.beam.elements import FileMeta, View, row_info
from vswin.client.errors import FileError
from vswin.client.extract import ExtractOptions, flat_views
from vswin.client.image import ImageView

META = "meta"


@contextlib.contextmanager
def local_file(uri: str) -> Iterator[str]:
    """A local path OpenCV (or Pillow) can open: the file itself, or a temporary copy of a gs://, s3://, ...
    object with the same suffix."""
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


@beam.typehints.with_output_types(View, **{META: tuple[str, FileMeta]})
class DecodeVideos(beam.DoFn):
    """URI -> its views (main output) then, once the whole file decoded, its FileMeta (output `meta`).

    Decoding, sampling, resizing and cropping are vswin.client's (ExtractOptions.batches),
    videos in groups of `group_clips` clips so a long video never sits in memory
    whole. The geometry and preprocessing come from the model (`model.info()`),
    looked up once per worker process; options that do not fit the model stop
    the job there, before any file is read.
    """

    def __init__(self, model, options: ExtractOptions, group_clips: int) -> None:
        self._model = model
        self._options = options
        self._group_clips = group_clips
        self._shared = shared.Shared()
        self._info = None

    def setup(self) -> None:
        self._info = self._shared.acquire(lambda: _Counted(row_info(self._model.info())), tag=repr(self._model))
        self._options.resolve(self._info.value)  # ValueError, e.g. --clips for an image model

    def process(self, uri: str) -> Iterator[View | beam.pvalue.TaggedOutput]:
        if self._info.first_use():
            metrics.counter(metrics.DECODE_SETUPS).inc()
        info = self._info.value
        offset, indices, last = 0, [], None
        with local_file(uri) as path:
            try:
                for part in self._options.batches(path, info, self._group_clips):
                    views = flat_views(part, info.view_shape)
                    for i, view in enumerate(views):
                        yield View(uri, offset + i, view)
                    offset += len(views)
                    if not isinstance(part, ImageView):
                        indices.append(part.frame_indices)
                    last = part
            except FileError as err:
                if err.path == uri:
                    raise
                raise type(err)(uri, err.reason) from None  # name the file, not its temporary copy
        if isinstance(last, ImageView):
            meta = FileMeta(uri, info, offset, image_size=(last.height, last.width))
        else:
            meta = FileMeta(uri, info, offset, np.concatenate(indices), last.num_frames, last.fps)
        yield beam.pvalue.TaggedOutput(META, (uri, meta))


class _Counted:
    """A value shared by a process's threads, and whether its first user has counted it yet."""

    def __init__(self, value) -> None:
        self.value = value
        self.first_use = metrics.FirstUse()
