"""Write one model version as a TF Serving SavedModel: signatures, warmup, metadata, atomically."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Sequence

import keras

from vswin import contract
from vswin.export import autoselect, metadata, options, signatures as sigs, versions, warmup
from vswin.export.options import PRECISIONS

log = logging.getLogger("vswin.export")


def dtype_policy(precision: str) -> str | None:
    """The Keras dtype policy for a `--precision` value (weights stay float32, compute in `precision`)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, not {precision!r}")
    return PRECISIONS[precision]


def read_labels(path: Path) -> list[str]:
    """One label per line; blank lines are not allowed (they would shift every class after them)."""
    lines = Path(path).read_text().splitlines()
    if any(not line.strip() for line in lines):
        raise ValueError(f"label file {path} has blank lines; expected one label per line")
    return [line.strip() for line in lines]


def export_model(task, base: Path, name: str, *, version: int | None = None, frames: int | None = None,
                 size: tuple[int, int] | None = None, precision: str = "float32",
                 labels: Sequence[str] | None = None, batch_sizes: Sequence[int] = contract.ALLOWED_BATCH_SIZES,
                 default_signature: str = sigs.XLA, overwrite: bool = False, checkpoint: Path | None = None,
                 attention_blocks: str | None = None) -> Path:
    """Export `task` (built with `precision`'s policy) to `base/name/version`; returns that directory.

    `task` is a `SwinFeatureExtractor` or `SwinClassifier` of either family.
    Video exports take `frames` x `size` clips (default: the preset's clip_len
    and size), image exports `size` images (default: the preset's size) and
    no `frames`. `attention_blocks` (`last`, `all`, `S`, `S.B`, comma-separated)
    adds the `attention` signature. Without `version`, takes the next free
    integer. Everything that can be checked is checked before the first byte
    is written. `default_signature` `auto` times the XLA and graph passes here
    and serves the faster one (vswin.export.autoselect), recorded in vswin.json.
    """
    if default_signature not in contract.DEFAULT_SIGNATURE_CHOICES:
        raise ValueError(f"default signature must be one of {contract.DEFAULT_SIGNATURE_CHOICES}, "
                         f"not {default_signature!r}")
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"model name {name!r} must be a plain directory name")
    geometry = input_geometry(task, frames, size)
    if not batch_sizes or min(batch_sizes) < 1:
        raise ValueError(f"warmup batch sizes must be positive integers, got {list(batch_sizes)}")
    attention = options.attention_blocks(attention_blocks, task.backbone.depths) if attention_blocks else []
    model_base = Path(base) / name
    if version is not None:
        versions.check_target(model_base, version, overwrite)
    started = time.monotonic()
    choice = {"requested": default_signature, "measurement": None}
    if default_signature == contract.AUTO:
        log.info("exporting %s: measuring XLA against the graph for --default-signature auto", name)
        measurement = autoselect.measure(task, geometry)
        default_signature = measurement["chosen"]
        choice.update(measurement=measurement, note=autoselect.explain(measurement))
        log.info("default signature: %s (%.1f s)", choice["note"], time.monotonic() - started)
    log.info("exporting %s: tracing the signatures for %s input %s", name, geometry.family,
             "x".join(map(str, geometry.shape)))  # fmt: skip
    served = metadata.serving_metadata(task, geometry=geometry, precision=precision,
                                       default_signature=default_signature, attention=attention)
    endpoints = sigs.build_signatures(task, geometry, default_signature, labels, json.dumps(served), attention)

    archive = keras.export.ExportArchive()
    archive.track(task)
    for endpoint in endpoints:
        archive.add_endpoint(endpoint.name, endpoint.traced())
    log.info("exporting %s: traced %d signatures (%.1f s)", name, len(endpoints), time.monotonic() - started)

    names = [endpoint.name for endpoint in endpoints]
    # Warm up every uint8 signature a server of this export can run: with the graph default that is
    # a server without XLA, where replaying `features_xla` would fail and keep the version from loading.
    # `attention` is left to its first call: its outputs are large, and it serves occasional inspection.
    warm = [
        e.name for e in endpoints
        if e.takes_pixels and e.name != contract.ATTENTION and not (e.jit_compile and default_signature == sigs.GRAPH)
    ]
    with (
        versions.reserved_version(model_base, version) as version,
        versions.staged_version(model_base, version, overwrite) as staging,
    ):
        archive.write_out(str(staging), verbose=False)
        log.info("exporting %s: wrote the SavedModel (%.1f s)", name, time.monotonic() - started)
        assets_extra = staging / contract.ASSETS_EXTRA
        plan = warmup.warmup_plan(warm, batch_sizes)
        logs = warmup.warmup_logs(name, plan, geometry.shape, contract.uint8_input(geometry.family))
        warmup.write_warmup(assets_extra, logs)
        log.info("exporting %s: %d warmup requests (%s) (%.1f s)", name, len(plan), warmup.describe_plan(plan),
                 time.monotonic() - started)  # fmt: skip
        metadata.write_metadata(assets_extra, metadata.export_metadata(
            task, checkpoint=checkpoint, geometry=geometry, precision=precision,
            default_signature=default_signature, signatures=names, batch_sizes=batch_sizes, labels=labels,
            model_name=name, version=version, attention=attention, default_signature_choice=choice,
        ))
    target = model_base / str(version)
    log.info("exported %s version %d to %s in %.1f s (signatures: %s)", name, version, target,
             time.monotonic() - started, ", ".join(names))  # fmt: skip
    return target


def input_geometry(task, frames: int | None, size: tuple[int, int] | None) -> sigs.InputGeometry:
    """The export's fixed input: the task's preset sizes unless given; `frames` only for video."""
    preprocessing = task.preprocessor.preprocessing
    height, width = size or (preprocessing.size, preprocessing.size)
    if task.family == contract.IMAGE:
        if frames is not None:
            raise ValueError(f"{task.name} is an image model: it takes images, not clips of {frames} frames")
        frames_or_none = None
    else:
        frames_or_none = preprocessing.clip_len if frames is None else frames
        if frames_or_none < 1:
            raise ValueError(f"clip geometry must be positive, got {frames_or_none} frames of {height}x{width}")
    if min(height, width) < 1:
        raise ValueError(f"input size must be positive, got {height}x{width}")
    return sigs.InputGeometry(task.family, frames_or_none, height, width)
