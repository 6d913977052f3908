"""Per video: its metadata, its views' features and any failures -> one output row or one dead-letter record."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import apache_beam as beam
import numpy as np

from vswin.beam import metrics
from vswin.beam.elements import ASSEMBLE, DECODE, INFERENCE, Failure, VideoMeta, ViewFeatures
from vswin.client.extract import ExtractOptions, ExtractResult, assemble
from vswin.client.metadata import ModelInfo
from vswin.client.video import VideoClips

FAILED = "failed"
STAGE_ORDER = (DECODE, INFERENCE, ASSEMBLE)


def outcome(key: str, metas: list[VideoMeta], views: list[ViewFeatures], failures: list[Failure],
            options: ExtractOptions) -> ExtractResult | Failure:
    """The video's ExtractResult, built with vswin.client's assemble, or why there is none."""
    if failures:
        return min(failures, key=lambda f: (STAGE_ORDER.index(f.stage) if f.stage in STAGE_ORDER else 99, f.error))
    if len(metas) != 1:
        return Failure(key, ASSEMBLE, f"expected one decoded video for the key, got {len(metas)}")
    meta = metas[0]
    indices = sorted(view.index for view in views)
    if indices != list(range(meta.num_views)):
        return Failure(key, ASSEMBLE, f"features for {len(set(indices))} of {meta.num_views} views")
    versions = sorted({view.version for view in views})
    if len(versions) > 1:
        return Failure(key, ASSEMBLE, f"views answered by model versions {versions} (a rollout during the job); "
                                      "run again with --skip-existing")
    features = np.stack([view.features for view in sorted(views, key=lambda v: v.index)])
    # assemble reads only the shape of `clips` ([clips, crops, ...]); the pixels stayed in the decode step.
    crops = meta.num_views // len(meta.frame_indices)  # the decode's, also when the options left it to the model
    clips = VideoClips(path=key, clips=np.empty((len(meta.frame_indices), crops, 0), np.uint8),
                       frame_indices=meta.frame_indices, num_frames=meta.num_frames, fps=meta.fps)
    info = ModelInfo(name=meta.model, version=versions[0], signature=meta.signature, signatures={})
    return assemble([(clips, features)], info, options)


class AssembleVideos(beam.DoFn):
    """CoGroupByKey result (key, {meta, views, failures}) -> ExtractResult (main) or Failure (output `failed`)."""

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
