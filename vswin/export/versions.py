"""Version directories under a model base path, written atomically, with what a killed export leaves cleaned up.

TF Serving (and `vswin serve`) treat every directory whose name is a
positive integer as a servable version and poll for new ones. A version
must therefore appear whole or not at all: it is built in a hidden sibling
(not an integer name, so never picked up) and renamed into place.

Every hidden entry an export makes names its owner (this host and process):
`.reserved-N` (a version number held while an export without --version runs)
holds an `owner` file, and `.staging-N-HOST-PID-*` / `.retired-N-HOST-PID-*`
carry it in their names. The next export removes the ones whose process is
gone, so a killed export neither leaves them forever nor makes the next one
skip its number. Entries of other hosts (a shared model store) or without an
owner are only taken back after STALE_AFTER_S.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import socket
import time
import uuid
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)

RESERVED_PREFIX = ".reserved-"
STAGING_PREFIX = ".staging-"
RETIRED_PREFIX = ".retired-"
REMOVING_PREFIX = ".removing-"  # a stale entry claimed for removal (renamed first, so one cleaner wins)
OWNER_FILE = "owner"
STALE_AFTER_S = 24 * 3600.0  # for entries whose owner cannot be checked from here


class VersionExistsError(FileExistsError):
    """The version is already there and `overwrite` was not asked for."""


def versions(model_base: Path) -> list[int]:
    """The integer version directories under `model_base`, ascending."""
    if not model_base.is_dir():
        return []
    return sorted(int(p.name) for p in model_base.iterdir() if p.is_dir() and p.name.isdigit() and int(p.name) > 0)


def _host_tag() -> str:
    """A short, name-safe tag of this host (hostnames may hold dashes and dots)."""
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def _owner() -> str:
    return f"{_host_tag()}-{os.getpid()}"


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's live process
        return False
    return False


def _owner_gone(owner: str | None, entry: Path) -> bool:
    """Whether the export that made `entry` has ended: its process is gone, or (unknown owner) it is old."""
    host, _, pid = (owner or "").partition("-")
    if host == _host_tag() and pid.isdigit():
        return _process_gone(int(pid))
    try:
        return time.time() - entry.stat().st_mtime > STALE_AFTER_S
    except FileNotFoundError:
        return False


def _reservation_owner(entry: Path) -> str | None:
    try:
        return (entry / OWNER_FILE).read_text().strip()
    except OSError:
        return None


def _named_owner(entry: Path, prefix: str) -> str | None:
    """HOST-PID from `.staging-N-HOST-PID-HEX` (None for names without one, made by older versions)."""
    parts = entry.name[len(prefix):].split("-")
    return f"{parts[1]}-{parts[2]}" if len(parts) == 4 and parts[2].isdigit() else None


def clean_stale(model_base: Path) -> list[str]:
    """Remove reservations, staging and retired directories of exports that have ended; returns their names."""
    if not model_base.is_dir():
        return []
    removed = []
    for entry in model_base.iterdir():
        if entry.name.startswith(RESERVED_PREFIX):
            owner = _reservation_owner(entry)
        elif entry.name.startswith(STAGING_PREFIX):
            owner = _named_owner(entry, STAGING_PREFIX)
        elif entry.name.startswith(RETIRED_PREFIX):
            owner = _named_owner(entry, RETIRED_PREFIX)
        elif entry.name.startswith(REMOVING_PREFIX):  # a cleaner killed mid-removal
            shutil.rmtree(entry, ignore_errors=True)
            continue
        else:
            continue
        if not _owner_gone(owner, entry):
            continue
        claimed = model_base / f"{REMOVING_PREFIX}{uuid.uuid4().hex[:8]}"
        try:
            os.rename(entry, claimed)  # one cleaner wins; an export never sees a half-removed entry
        except FileNotFoundError:
            continue  # another export cleaned it first
        shutil.rmtree(claimed, ignore_errors=True)
        removed.append(entry.name)
    if removed:
        log.info("%s: removed what ended exports left behind: %s", model_base, ", ".join(sorted(removed)))
    return removed


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
    per number, holding the owner's host and pid; a number whose reservation or version
    directory already exists is skipped. Reservations of ended exports are reclaimed first.
    """
    if version is not None:
        yield version
        return
    model_base.mkdir(parents=True, exist_ok=True)
    clean_stale(model_base)
    while True:
        candidate = next_version(model_base)
        marker = model_base / f"{RESERVED_PREFIX}{candidate}"
        try:
            marker.mkdir()
        except FileExistsError:
            continue
        (marker / OWNER_FILE).write_text(_owner() + "\n")
        if not (model_base / str(candidate)).exists():
            break
        shutil.rmtree(marker)
    try:
        yield candidate
    finally:
        shutil.rmtree(marker, ignore_errors=True)


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
    clean_stale(model_base)
    staging = model_base / f"{STAGING_PREFIX}{version}-{_owner()}-{uuid.uuid4().hex[:8]}"
    try:
        yield staging
        if target.exists():
            if not overwrite:
                raise VersionExistsError(f"{target} appeared while exporting; not replacing it")
            retired = model_base / f"{RETIRED_PREFIX}{version}-{_owner()}-{uuid.uuid4().hex[:8]}"
            os.rename(target, retired)
            os.rename(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
