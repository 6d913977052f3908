"""`assets.extra/vswin.json`: what a server, client or operator needs to know about one export."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any, Sequence

import keras
import tensorflow as tf

import vswin
from vswin import contract
from vswin.contract import METADATA_FILE


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def serving_metadata(task, *, geometry, precision: str, default_signature: str,
                     attention: Sequence[tuple[int, int]] = ()) -> dict[str, Any]:
    """What a client needs to feed the model like the original pipeline; also the `metadata` signature's answer.

    `preprocessing` is the task's (its preset's), with the export's geometry:
    clip_len and size for video, size for images.
    """
    preprocessing = task.preprocessor.preprocessing
    size = max(geometry.height, geometry.width)
    if geometry.family == contract.VIDEO:
        preprocessing = dataclasses.replace(preprocessing, clip_len=geometry.frames, size=size)
        layout = {"clip": {"clip_len": geometry.frames, "height": geometry.height, "width": geometry.width}}
    else:
        preprocessing = dataclasses.replace(preprocessing, size=size)
        layout = {"image": {"height": geometry.height, "width": geometry.width}}
    for spec in layout.values():
        spec.update({"channels": 3, "input_dtype": "uint8", "color": "RGB"})
    served = {
        "family": geometry.family,
        "architecture_name": task.name,
        **layout,
        "preprocessing": preprocessing.to_dict(),
        "features_dim": task.features_dim,
        "num_classes": task.num_classes if task.has_head else None,
        "precision": precision,
        "default_signature": default_signature,
    }
    if attention:
        served["attention_blocks"] = [contract.attention_output(stage, block) for stage, block in attention]
    return served


def export_metadata(task, *, checkpoint: Path | None, geometry, precision: str, default_signature: str,
                    signatures: Sequence[str], batch_sizes: Sequence[int], labels: Sequence[str] | None,
                    model_name: str, version: int, attention: Sequence[tuple[int, int]] = (),
                    default_signature_choice: dict[str, Any] | None = None) -> dict[str, Any]:
    """The full vswin.json: serving_metadata plus provenance (architecture, checkpoint, versions, time).

    `default_signature_choice`: what `--default-signature` asked for and, for
    `auto`, the measurement that decided (vswin.export.autoselect).
    """
    return {
        "model_name": model_name,
        "version": version,
        **serving_metadata(task, geometry=geometry, precision=precision, default_signature=default_signature,
                           attention=attention),
        "default_signature_choice": default_signature_choice or {"requested": default_signature, "measurement": None},
        "architecture": task.architecture(),
        "checkpoint": {
            "path": str(checkpoint.resolve()) if checkpoint else None,
            "sha256": sha256_of(checkpoint) if checkpoint else None,
            "random_weights": checkpoint is None,
        },
        "labels": list(labels) if labels is not None else None,
        "signatures": list(signatures),
        contract.WARMUP_BATCH_SIZES_KEY: list(batch_sizes),
        "versions": {
            "vswin-serving": vswin.__version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "tensorflow-serving-api": _version("tensorflow-serving-api"),
        },
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _version(package: str) -> str | None:
    try:
        return package_metadata.version(package)
    except package_metadata.PackageNotFoundError:
        return None


def write_metadata(assets_extra: Path, data: dict[str, Any]) -> Path:
    assets_extra.mkdir(parents=True, exist_ok=True)
    path = assets_extra / METADATA_FILE
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
