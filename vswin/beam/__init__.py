"""Batch feature extraction on Apache Beam: video and image URIs in, Parquet (or TFRecord) features out.

Composable PTransforms for a user's own pipeline, and the pipeline behind `vswin beam`:

    import apache_beam as beam
    from vswin.beam import ExtractFeatures, ReadVideoUris, RemoteModel, WriteFailures, WriteFeatures
    from vswin.client.extract import ExtractOptions

    with beam.Pipeline() as p:
        uris = p | ReadVideoUris("gs://bucket/videos/*.mp4")
        out = uris | ExtractFeatures(RemoteModel("serving:8500", "swin_tiny_k400"), ExtractOptions(clips=4))
        out.rows | WriteFeatures("gs://bucket/features/k400")
        out.failed | WriteFailures("gs://bucket/features/k400")

Two inference modes with the same output: `RemoteModel` (TF Serving or `vswin serve`
over gRPC; the workers never import TensorFlow) and `ExportedModel` (the SavedModel
loaded in each worker). Names load on first use, so `vswin --help` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vswin.lazy import lazy_exports

_EXPORTS = {
    "ExportedModel": "vswin.beam.models",
    "RemoteModel": "vswin.beam.models",
    "ReadVideoUris": "vswin.beam.inputs",
    "DecodeVideos": "vswin.beam.decode",
    "ExtractFeatures": "vswin.beam.pipeline",
    "WriteFeatures": "vswin.beam.sinks",
    "WriteFailures": "vswin.beam.sinks",
    "ReadExistingOutput": "vswin.beam.sinks",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from vswin.beam.decode import DecodeVideos
    from vswin.beam.inputs import ReadVideoUris
    from vswin.beam.models import ExportedModel, RemoteModel
    from vswin.beam.pipeline import ExtractFeatures
    from vswin.beam.sinks import ReadExistingOutput, WriteFailures, WriteFeatures
