"""Where features go: Parquet shards (default) or TFRecord of tf.train.Example, plus the dead-letter file.

Names are deterministic (PREFIX-SSSSS-of-NNNNN.parquet, PREFIX-failed-00000-of-00001.jsonl),
so running the same job again replaces its output instead of adding to it.
With --skip-existing the earlier rows are read back, only the missing keys
are processed, and both are written to the same names. Beam writes every
shard to a temporary folder and replaces the earlier shards only at the very
end, so a job that dies before then leaves the previous output as it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems

from vswin.beam import examples
from vswin.beam.elements import Failure
from vswin.client.extract import ImageResult, Result

DEFAULT_SHARDS = 1
FAILED_SUFFIX = "-failed"

# The output's columns (Parquet) and features (tf.train.Example), one row per file (video or image).
KEY, MODEL, VERSION = "key", "model", "version"
CLIP_STARTS, FEATURES, CLIP_FEATURES = "clip_starts", "features", "clip_features"
CLIP_FEATURES_SHAPE = "clip_features_shape"  # TFRecord only: [clips, crops, C] of the flattened clip_features


def parquet_schema():
    """key, model, version (the one that answered), clip_starts [clips] (s), features [C] (mean over
    clips and crops), clip_features [clips][crops][C]; see row_arrays for images."""
    import pyarrow as pa

    return pa.schema([
        (KEY, pa.string()),
        (MODEL, pa.string()),
        (VERSION, pa.int64()),
        (CLIP_STARTS, pa.list_(pa.float64())),
        (FEATURES, pa.list_(pa.float32())),
        (CLIP_FEATURES, pa.list_(pa.list_(pa.list_(pa.float32())))),
    ])


def row_arrays(result: Result) -> tuple[str, np.ndarray, np.ndarray]:
    """(key, clip_starts [clips], clip_features [clips, crops, C]) of one file's result. A video's frames sent
    to an image model are its clips (one crop each, starting at the frame's time); an image is one view
    without a time: clip_starts empty, clip_features [[features]]. So every row's features are the mean of
    its clip_features."""
    if isinstance(result, ImageResult):
        return result.image, np.empty(0), result.features[None, None]
    return result.video, result.clip_starts, result.clip_features


class ParquetFormat:
    name, suffix = "parquet", ".parquet"

    @staticmethod
    def check() -> None:
        import pyarrow  # noqa: F401  (in the [beam] extra)

    @staticmethod
    def encode(result: Result) -> dict:
        key, clip_starts, clip_features = row_arrays(result)
        return {KEY: key, MODEL: result.model, VERSION: int(result.version),
                CLIP_STARTS: clip_starts.astype(np.float64).tolist(), FEATURES: result.features.tolist(),
                CLIP_FEATURES: clip_features.tolist()}

    @staticmethod
    def key(record: dict) -> str:
        return record[KEY]

    def writer(self, prefix: str, num_shards: int) -> beam.PTransform:
        return beam.io.WriteToParquet(prefix, parquet_schema(), file_name_suffix=self.suffix, num_shards=num_shards)

    @staticmethod
    def reader() -> beam.PTransform:
        return beam.io.ReadAllFromParquet()


class TFRecordFormat:
    """tf.train.Example per file, for TF training input: clip_features flattened, with its shape."""

    name, suffix = "tfrecord", ".tfrecord"
    _FLOATS = frozenset({CLIP_STARTS, FEATURES, CLIP_FEATURES})

    @staticmethod
    def check() -> None:
        """Fail before the job rather than at its last step: Beam's TFRecord sink needs a CRC-32C library."""
        from apache_beam.io import tfrecordio

        try:
            tfrecordio._default_crc32c_fn(b"")  # Beam's own lookup of google-crc32c, crcmod or snappy
        except RuntimeError as err:
            raise ValueError(f"--format tfrecord needs google-crc32c (pip install 'vswin-serving[beam]'): {err}") from None

    def encode(self, result: Result) -> bytes:
        key, clip_starts, clip_features = row_arrays(result)
        return examples.encode({
            KEY: [key], MODEL: [result.model], VERSION: [int(result.version)],
            CLIP_STARTS: clip_starts.tolist(), FEATURES: result.features.tolist(),
            CLIP_FEATURES: clip_features.reshape(-1).tolist(), CLIP_FEATURES_SHAPE: list(clip_features.shape),
        }, self._FLOATS)

    @staticmethod
    def key(record: bytes) -> str:
        return examples.decode(record)[KEY][0].decode("utf-8")

    def writer(self, prefix: str, num_shards: int) -> beam.PTransform:
        return beam.io.WriteToTFRecord(prefix, file_name_suffix=self.suffix, num_shards=num_shards)

    @staticmethod
    def reader() -> beam.PTransform:
        return beam.io.ReadAllFromTFRecord()


FORMATS = {ParquetFormat.name: ParquetFormat(), TFRecordFormat.name: TFRecordFormat()}


def existing_shards(prefix: str, suffix: str) -> dict[str, int]:
    """Output shards already at `prefix` (path -> their NNNNN), from an earlier run."""
    directory, base = FileSystems.split(prefix)
    name = re.compile(re.escape(base) + r"-\d{5}-of-(\d{5})" + re.escape(suffix))
    found = {}
    for match in FileSystems.match([f"{prefix}-*-of-*{suffix}"]):
        for file in match.metadata_list:
            parsed = name.fullmatch(FileSystems.split(file.path)[1])
            if parsed:
                found[file.path] = int(parsed.group(1))
    return found


@dataclass(frozen=True)
class OutputPlan:
    """How many shards to write, and which earlier shards to carry over (--skip-existing)."""

    num_shards: int
    carried: tuple[str, ...]


def plan_output(prefix: str, suffix: str, num_shards: int | None, skip_existing: bool) -> OutputPlan:
    """Keep one set of shard names per prefix: a different shard count would leave stale shards beside the new."""
    shards = existing_shards(prefix, suffix)
    counts = sorted(set(shards.values()))
    if len(counts) > 1:
        raise ValueError(f"{prefix}: shards of runs with {counts} shards lie side by side; remove the stale ones")
    if counts and num_shards is not None and num_shards != counts[0]:
        raise ValueError(f"{prefix} holds {counts[0]} shard(s) of an earlier run; pass --num-shards {counts[0]} "
                         f"or remove them, so that no stale shard is left beside {num_shards} new one(s)")
    if num_shards is not None and num_shards < 1:
        raise ValueError(f"--num-shards must be >= 1, got {num_shards}")
    return OutputPlan(num_shards or (counts[0] if counts else DEFAULT_SHARDS),
                      tuple(sorted(shards)) if skip_existing else ())


class ReadExistingOutput(beam.PTransform):
    """PBegin -> (key, record) of every row in the given shards, in the format's own records."""

    def __init__(self, paths: tuple[str, ...], output_format: str = ParquetFormat.name) -> None:
        super().__init__()
        self.paths = paths
        self.format = FORMATS[output_format]

    def expand(self, pbegin):
        fmt = self.format
        return (pbegin | "Shards" >> beam.Create(list(self.paths)) | "Read" >> fmt.reader()
                | "Key" >> beam.Map(lambda record: (fmt.key(record), record)))


class WriteFeatures(beam.PTransform):
    """ExtractResults and ImageResults -> PREFIX-SSSSS-of-NNNNN.parquet (or .tfrecord); `carried`: records of
    an earlier run (ReadExistingOutput's values) written along."""

    def __init__(self, prefix: str, output_format: str = ParquetFormat.name, num_shards: int = DEFAULT_SHARDS,
                 carried=None) -> None:
        super().__init__()
        self.prefix = prefix
        self.format = FORMATS[output_format]
        self.num_shards = num_shards
        self.carried = carried

    def expand(self, results):
        records = results | "Encode" >> beam.Map(self.format.encode)
        if self.carried is not None:
            records = (records, self.carried) | "WithCarried" >> beam.Flatten()
        return records | "Write" >> self.format.writer(self.prefix, self.num_shards)


class WriteFailures(beam.PTransform):
    """Failures -> PREFIX-failed-00000-of-00001.jsonl: one {"key", "stage", "error"} per line (empty if none)."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def expand(self, failures):
        return (failures | "Json" >> beam.Map(Failure.to_json)
                | "Write" >> beam.io.WriteToText(self.prefix + FAILED_SUFFIX, file_name_suffix=".jsonl", num_shards=1))
