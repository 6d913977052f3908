"""The extraction PTransform and the `vswin beam` job built around it.

    URIs ──Distinct, Reshuffle──▶ DecodeVideos ──views──▶ RunInference ──features──┐
                                   │ │                      (batches across videos)  │
                                   │ └──meta────────────────────────────────────────┼─▶ CoGroupByKey(key)
                                   └──decode errors──▶ failures ◀──inference errors─┘        │
                                                                                  AssembleVideos
                                                                          rows ◀──────┴──────▶ failed
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import apache_beam as beam
from apache_beam.ml.inference.base import RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from vswin.beam import metrics
from vswin.beam.assemble import FAILED, AssembleVideos
from vswin.beam.decode import META, DecodeVideos
from vswin.beam.elements import DECODE, INFERENCE, Failure, describe_error
from vswin.beam.inputs import ReadVideoUris
from vswin.beam.sinks import FORMATS, ReadExistingOutput, WriteFailures, WriteFeatures, plan_output
from vswin.client.extract import ExtractOptions

log = logging.getLogger(__name__)

VIEWS, ERRORS = "views", "errors"


class Extracted(NamedTuple):
    rows: beam.PCollection  # ExtractResult per video, ImageResult per image
    failed: beam.PCollection  # Failure per file


class ExtractFeatures(beam.PTransform):
    """Video and image URIs -> Extracted(rows, failed): one result or one Failure per distinct URI.

    `model` is a RemoteModel or an ExportedModel; `options` the sampling
    (vswin.client's ExtractOptions; unset settings are the model's, from its
    export). A video gives an ExtractResult (for an image model: its frames'
    features), an image (jpg, png, webp; image models only) an ImageResult.
    Views of different files share inference batches; a file that cannot be
    decoded or whose batch failed becomes a Failure.
    """

    def __init__(self, model, options: ExtractOptions | None = None) -> None:
        super().__init__()
        self.model = model
        self.options = options or ExtractOptions()

    def expand(self, uris):
        decoded = (
            uris
            | "Distinct" >> beam.Distinct()
            | "Spread" >> beam.Reshuffle()
            | "Decode" >> beam.ParDo(DecodeVideos(self.model, self.options, group_clips=self.model.max_batch))
            .with_exception_handling(main_tag=VIEWS, dead_letter_tag=ERRORS, partial=True)
            .with_outputs(META, main=VIEWS)
        )
        features, dlq = decoded[VIEWS] | "Infer" >> RunInference(self.model.handler()).with_exception_handling()
        failures = (
            decoded[ERRORS] | "DecodeFailures" >> beam.Map(_decode_failure),
            dlq.failed_inferences | "InferenceFailures" >> beam.FlatMap(_inference_failures),
        ) | "Failures" >> beam.Flatten()
        grouped = {
            "meta": decoded[META],
            "views": features | "KeyViews" >> beam.Map(lambda view: (view.key, view)),
            "failures": failures,
        } | "ByVideo" >> beam.CoGroupByKey()
        out = grouped | "Assemble" >> beam.ParDo(AssembleVideos(self.options)).with_outputs(FAILED, main="rows")
        return Extracted(out["rows"], out[FAILED])


def _decode_failure(element: tuple) -> tuple[str, Failure]:
    uri, error = element
    return uri, Failure(uri, DECODE, describe_error(error))


def _inference_failures(element: tuple) -> Iterator[tuple[str, Failure]]:
    batch, error = element
    message = describe_error(error)
    for key in sorted({view.key for view in batch}):
        yield key, Failure(key, INFERENCE, message)


class DropKeys(beam.PTransform):
    """URIs -> those not among `done` (keys already in the output), counting the skipped ones."""

    def __init__(self, done) -> None:
        super().__init__()
        self.done = done

    def expand(self, uris):
        return ({"todo": uris | "Todo" >> beam.Map(lambda uri: (uri, None)), "done": self.done}
                | "Join" >> beam.CoGroupByKey() | "Keep" >> beam.FlatMap(_keep_todo))


def _keep_todo(element: tuple) -> Iterator[str]:
    key, grouped = element
    if list(grouped["todo"]):
        if list(grouped["done"]):
            metrics.counter(metrics.VIDEOS_SKIPPED).inc()
        else:
            yield key


@dataclass(frozen=True)
class Job:
    """One `vswin beam` run: which videos, which model, where to, and Beam's own options."""

    inputs: str
    output: str
    model: object  # RemoteModel | ExportedModel
    options: ExtractOptions = field(default_factory=ExtractOptions)
    output_format: str = "parquet"
    num_shards: int | None = None
    skip_existing: bool = False
    pipeline_args: tuple[str, ...] = ()


def build(pipeline: beam.Pipeline, job: Job) -> None:
    """Add the job's steps to `pipeline`."""
    fmt = FORMATS[job.output_format]
    fmt.check()
    plan = plan_output(job.output, fmt.suffix, job.num_shards, job.skip_existing)
    uris = pipeline | "Inputs" >> ReadVideoUris(job.inputs)
    carried = None
    if plan.carried:
        log.info("--skip-existing: %d shard(s) of earlier output at %s", len(plan.carried), job.output)
        existing = pipeline | "Existing" >> ReadExistingOutput(plan.carried, job.output_format)
        uris = uris | "SkipExisting" >> DropKeys(existing | "Keys" >> beam.Map(lambda kv: (kv[0], None)))
        carried = existing | "Records" >> beam.Values()
    out = uris | "Extract" >> ExtractFeatures(job.model, job.options)
    out.rows | "WriteFeatures" >> WriteFeatures(job.output, job.output_format, plan.num_shards, carried)
    out.failed | "WriteFailures" >> WriteFailures(job.output)


def run(job: Job) -> tuple[dict[str, int], float]:
    """Build and run the job to the end; its `vswin` counters and the seconds it took."""
    start = time.monotonic()
    pipeline = beam.Pipeline(options=PipelineOptions(list(job.pipeline_args)))
    build(pipeline, job)
    result = pipeline.run()
    result.wait_until_finish()
    return metrics.query(result), time.monotonic() - start
