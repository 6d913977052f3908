"""Per file: its metadata, its views' features and any failures -> one output row or one dead-letter record."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

import apache_beam as beam
import numpy as np

from vswin.beam import metrics
from vswin.beam.elements import ASSEMBLE, DECODE, INFERENCE, Failure, FileMeta, ViewFeatures
from vswin.client.extract import ExtractOptions, Result, Views, assemble
from vswin.client.image import ImageView
from vswin.client.video import VideoClips

FAILED = "failed"
STAGE_ORDER = (DECODE, INFERENCE, ASSEMBLE)


def outcome(key: str, metas: list[FileMeta], views: list[ViewFeatures], failures: list[Failure],
            options: ExtractOptions) -> Result | Failure:
    """The file's ExtractResult (a video) or ImageResult (an image), built with vswin.client's assemble, or why
    there is none."""
    if failures:
        return min(failures, key=lambda f: (STAGE_ORDER.index(f.stage) if f.stage in STAGE_ORDER else 99, f.error))
    if len(metas) != 1:
        return Failure(key, ASSEMBLE, f"expected one decoded file for the key, got {len(metas)}")
    meta = metas[0]
    indices = sorted(view.index for view in views)
    if indices != list(range(meta.num_views)):
        return Failure(key, ASSEMBLE, f"features for {len(set(indices))} of {meta.num_views} views")
    versions = sorted({view.version for view in views})
    if len(versions) > 1:
        return Failure(key, ASSEMBLE, f"views answered by model versions {versions} (a rollout during the job); "
                                      "run again with --skip-existing")
    features = np.stack([view.features for view in sorted(views, key=lambda v: v.index)])
    # The model as the decode saw it (its export's preprocessing is what cut the file), at the version that answered.
    info = dataclasses.replace(meta.info, version=versions[0])
    return assemble([(shape_only(key, meta), features)], info, options)


def shape_only(key: str, meta: FileMeta) -> Views:
    """The decoded part without its pixels, which stayed in the decode step: assemble reads only the shape of
    a video's `clips` ([clips, crops, ...]) and an image's original size."""
    if meta.image_size is not None:
        return ImageView(key, np.empty((0, 0, 3), np.uint8), *meta.image_size)
    crops = meta.num_views // len(meta.frame_indices)  # the decode's, also when the options left it to the model
    return VideoClips(path=key, clips=np.empty((len(meta.frame_indices), crops, 0), np.uint8),
                      frame_indices=meta.frame_indices, num_frames=meta.num_frames, fps=meta.fps)


class AssembleVideos(beam.DoFn):
    """CoGroupByKey result (key, {meta, views, failures}) -> ExtractResult or ImageResult (main), or Failure
    (output `failed`)."""

    def __init__(self, options: ExtractOptions) -> None:
        self._options = options

    def process(self, element: tuple[str, dict[str, Iterable]]) -> Iterator:
        key, grouped = element
        result = outcome(key, list(grouped["meta"]), list(grouped["views"]), list(grouped["failures"]),
                         self._options)
        if isinstance(result, Failure):
            metrics.counter(metrics.VIDEOS_FAILED).inc()
            yield beam.pvalue.TaggedOutput(FAILED, result)
        else:
            metrics.counter(metrics.VIDEOS_OK).inc()
            metrics.counter(metrics.CLIPS).inc(result.num_clips)
            yield result
