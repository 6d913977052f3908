"""Write one model version as a TF Serving SavedModel: signatures, warmup, metadata, atomically."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

import keras

from vswin import contract
from vswin.export import autoselect, metadata, signatures as sigs, versions, warmup
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
    checked is checked before the first byte is written. `default_signature`
    `auto` times the XLA and graph passes here and serves the faster one
    (vswin.export.autoselect), recorded in vswin.json.
    """
    if default_signature not in contract.DEFAULT_SIGNATURE_CHOICES:
        raise ValueError(f"default signature must be one of {contract.DEFAULT_SIGNATURE_CHOICES}, "
                         f"not {default_signature!r}")
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"model name {name!r} must be a plain directory name")
    if frames < 1 or min(size) < 1:
        raise ValueError(f"clip geometry must be positive, got {frames} frames of {size[0]}x{size[1]}")
    if not batch_sizes or min(batch_sizes) < 1:
        raise ValueError(f"warmup batch sizes must be positive integers, got {list(batch_sizes)}")
    model_base = Path(base) / name
    if version is not None:
        versions.check_target(model_base, version, overwrite)
    geometry = sigs.ClipGeometry(frames, *size)
    choice = {"requested": default_signature, "measurement": None}
    if default_signature == contract.AUTO:
        measurement = autoselect.measure(model, geometry)
        default_signature = measurement["chosen"]
        choice.update(measurement=measurement, note=autoselect.explain(measurement))
        log.info("default signature: %s", choice["note"])
    served = metadata.serving_metadata(model, geometry=geometry, precision=precision,
                                       default_signature=default_signature)
    endpoints = sigs.build_signatures(model, geometry, default_signature, labels, json.dumps(served))

    archive = keras.export.ExportArchive()
    archive.track(model)
    for endpoint in endpoints:
        archive.add_endpoint(endpoint.name, endpoint.traced())

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
        assets_extra = staging / contract.ASSETS_EXTRA
        warmup.write_warmup(assets_extra, warmup.warmup_logs(name, frame_signatures, batch_sizes, (frames, *size, 3)))
        metadata.write_metadata(assets_extra, metadata.export_metadata(
            model, checkpoint=checkpoint, geometry=geometry, precision=precision,
            default_signature=default_signature, signatures=names, batch_sizes=batch_sizes, labels=labels,
            model_name=name, version=version, default_signature_choice=choice,
        ))
    target = model_base / str(version)
    log.info("exported %s version %d to %s (signatures: %s)", name, version, target, ", ".join(names))
    return target
