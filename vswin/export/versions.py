"""Version directories under a model base path, written atomically.

TF Serving (and `vswin serve`) treat every directory whose name is a
positive integer as a servable version and poll for new ones. A version
must therefore appear whole or not at all: it is built in a hidden sibling
(not an integer name, so never picked up) and renamed into place.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator


class VersionExistsError(FileExistsError):
    """The version is already there and `overwrite` was not asked for."""


def versions(model_base: Path) -> list[int]:
    """The integer version directories under `model_base`, ascending."""
    if not model_base.is_dir():
        return []
    return sorted(int(p.name) for p in model_base.iterdir() if p.is_dir() and p.name.isdigit() and int(p.name) > 0)


RESERVED_PREFIX = ".reserved-"


def _reserved(model_base: Path) -> list[int]:
    """Numbers held by exports in progress that chose their version automatically."""
    if not model_base.is_dir():
        return []
    tails = (p.name.removeprefix(RESERVED_PREFIX) for p in model_base.iterdir() if p.name.startswith(RESERVED_PREFIX))
    return [int(tail) for tail in tails if tail.isdigit()]


def next_version(model_base: Path) -> int:
    """One past the highest version, counting numbers reserved by exports in progress."""
    return max(versions(model_base) + _reserved(model_base), default=0) + 1


@contextlib.contextmanager
def reserved_version(model_base: Path, version: int | None) -> Iterator[int]:
    """`version`, or (None) the next free number held against concurrent exports until the block ends.

    The hold is a hidden directory created with mkdir, which only one process can win
    per number; a number whose reservation or version directory already exists is skipped.
    """
    if version is not None:
        yield version
        return
    model_base.mkdir(parents=True, exist_ok=True)
    while True:
        candidate = next_version(model_base)
        marker = model_base / f"{RESERVED_PREFIX}{candidate}"
        try:
            marker.mkdir()
        except FileExistsError:
            continue
        if not (model_base / str(candidate)).exists():
            break
        marker.rmdir()
    try:
        yield candidate
    finally:
        marker.rmdir()


def check_target(model_base: Path, version: int, overwrite: bool) -> Path:
    """The final directory of `version`, or an error before anything is written."""
    if version < 1:
        raise ValueError(f"version must be a positive integer, not {version}")
    target = model_base / str(version)
    if target.exists() and not overwrite:
        raise VersionExistsError(f"{target} already exists; pass --overwrite to replace it")
    return target


@contextlib.contextmanager
def staged_version(model_base: Path, version: int, overwrite: bool) -> Iterator[Path]:
    """Yield a hidden staging directory; on success it becomes `model_base/version` in one rename."""
    target = check_target(model_base, version, overwrite)
    model_base.mkdir(parents=True, exist_ok=True)
    staging = model_base / f".staging-{version}-{uuid.uuid4().hex[:8]}"
    try:
        yield staging
        if target.exists():
            if not overwrite:
                raise VersionExistsError(f"{target} appeared while exporting; not replacing it")
            retired = model_base / f".retired-{version}-{uuid.uuid4().hex[:8]}"
            os.rename(target, retired)
            os.rename(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
