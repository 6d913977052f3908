"""Write one model version as a TF Serving SavedModel: signatures, warmup, metadata, atomically."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Sequence

import keras

from vswin import contract
from vswin.export import metadata, signatures as sigs, versions, warmup
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


def export_model(model, base: Path, name: str, *, version: int | None = None, frames: int = contract.CLIP_LEN,
                 size: tuple[int, int] = (contract.CROP_SIZE, contract.CROP_SIZE), precision: str = "float32",
                 labels: Sequence[str] | None = None, batch_sizes: Sequence[int] = contract.ALLOWED_BATCH_SIZES,
                 default_signature: str = sigs.XLA, overwrite: bool = False,
                 checkpoint: Path | None = None) -> Path:
    """Export `model` (built with `precision`'s policy) to `base/name/version`; returns that directory.

    Without `version`, takes the next free integer. Everything that can be
    checked is checked before the first byte is written.
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"model name {name!r} must be a plain directory name")
    if frames < 1 or min(size) < 1:
        raise ValueError(f"clip geometry must be positive, got {frames} frames of {size[0]}x{size[1]}")
    if not batch_sizes or min(batch_sizes) < 1:
        raise ValueError(f"warmup batch sizes must be positive integers, got {list(batch_sizes)}")
    model_base = Path(base) / name
    if version is not None:
        versions.check_target(model_base, version, overwrite)
    started = time.monotonic()
    log.info("exporting %s: tracing the signatures for %dx%dx%d clips", name, frames, *size)
    geometry = sigs.ClipGeometry(frames, *size)
    served = metadata.serving_metadata(model, geometry=geometry, precision=precision,
                                       default_signature=default_signature)
    endpoints = sigs.build_signatures(model, geometry, default_signature, labels, json.dumps(served))

    archive = keras.export.ExportArchive()
    archive.track(model)
    for endpoint in endpoints:
        archive.add_endpoint(endpoint.name, endpoint.traced())
    log.info("exporting %s: traced %d signatures (%.1f s)", name, len(endpoints), time.monotonic() - started)

    names = [endpoint.name for endpoint in endpoints]
    # Warm up every frames signature a server of this export can run: with the graph default that is
    # a server without XLA, where replaying `features_xla` would fail and keep the version from loading.
    frame_signatures = [
        e.name for e in endpoints
        if e.input_spec.name == contract.FRAMES and not (e.jit_compile and default_signature == sigs.GRAPH)
    ]
    with (
        versions.reserved_version(model_base, version) as version,
        versions.staged_version(model_base, version, overwrite) as staging,
    ):
        archive.write_out(str(staging), verbose=False)
        log.info("exporting %s: wrote the SavedModel (%.1f s)", name, time.monotonic() - started)
        assets_extra = staging / contract.ASSETS_EXTRA
        warmup.write_warmup(assets_extra, warmup.warmup_logs(name, frame_signatures, batch_sizes, (frames, *size, 3)))
        log.info("exporting %s: warmup requests for %s at batch sizes %s (%.1f s)", name, ", ".join(frame_signatures),
                 ",".join(map(str, batch_sizes)), time.monotonic() - started)  # fmt: skip
        metadata.write_metadata(assets_extra, metadata.export_metadata(
            model, checkpoint=checkpoint, geometry=geometry, precision=precision,
            default_signature=default_signature, signatures=names, batch_sizes=batch_sizes, labels=labels,
            model_name=name, version=version,
        ))
    target = model_base / str(version)
    log.info("exported %s version %d to %s in %.1f s (signatures: %s)", name, version, target,
             time.monotonic() - started, ", ".join(names))  # fmt: skip
    return target
