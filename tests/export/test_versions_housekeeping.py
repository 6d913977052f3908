"""What a killed export leaves behind is cleaned by the next one, which reuses its number (issue 12, defect 8)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vswin.export import versions
from vswin.export.versions import clean_stale, next_version, reserved_version, staged_version

REPO = Path(__file__).resolve().parents[2]

# A process that reserves the next version, starts staging it, then is killed (SIGKILL: no cleanup runs).
KILLED_EXPORT = """
import os, signal, sys
from pathlib import Path
from vswin.export.versions import reserved_version, staged_version
base = Path(sys.argv[1])
with reserved_version(base, None) as version, staged_version(base, version, False) as staging:
    staging.mkdir()
    (staging / "saved_model.pb").write_bytes(b"half written")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def killed_export(base: Path, env: dict[str, str]) -> None:
    process = subprocess.run([sys.executable, "-c", KILLED_EXPORT, str(base)], env=env, timeout=120)
    assert process.returncode == -signal.SIGKILL


def hidden(base: Path) -> list[str]:
    return sorted(p.name for p in base.iterdir() if p.name.startswith("."))


@pytest.mark.slow  # a subprocess
def test_a_killed_exports_reservation_and_staging_are_cleaned_and_its_number_reused(tmp_path, subprocess_env):
    base = tmp_path / "m"
    for version in (1, 2):
        (base / str(version)).mkdir(parents=True)
    killed_export(base, subprocess_env)
    left = hidden(base)
    assert left[0] == ".reserved-3" and left[1].startswith(".staging-3-") and len(left) == 2
    with reserved_version(base, None) as version:
        assert version == 3
        assert hidden(base) == [".reserved-3"]  # the dead export's entries are gone, this one holds 3
    assert hidden(base) == []


@pytest.mark.slow  # a subprocess
def test_an_explicit_version_export_cleans_stale_staging_too(tmp_path, subprocess_env):
    base = tmp_path / "m"
    (base / "1").mkdir(parents=True)
    killed_export(base, subprocess_env)
    with staged_version(base, 5, overwrite=False) as staging:
        staging.mkdir()
        assert hidden(base) == [staging.name]
    assert hidden(base) == [] and versions.versions(base) == [1, 5]


def test_entries_of_live_exports_are_left_alone(tmp_path):
    base = tmp_path / "m"
    with reserved_version(base, None) as version, staged_version(base, version, False) as staging:
        staging.mkdir()
        assert clean_stale(base) == []
        assert hidden(base) == sorted([f".reserved-{version}", staging.name])
        assert next_version(base) == version + 1


def test_entries_without_an_owner_are_reclaimed_only_when_old(tmp_path):
    """Older versions of vswin named no owner: their leftovers go after a day, not while they may be running."""
    base = tmp_path / "m"
    (base / ".reserved-4").mkdir(parents=True)
    (base / ".staging-9-deadbeef").mkdir()
    assert clean_stale(base) == [] and next_version(base) == 5
    day_ago = time.time() - versions.STALE_AFTER_S - 60
    for name in (".reserved-4", ".staging-9-deadbeef"):
        os.utime(base / name, (day_ago, day_ago))
    assert sorted(clean_stale(base)) == [".reserved-4", ".staging-9-deadbeef"]
    assert hidden(base) == [] and next_version(base) == 1


def test_another_hosts_entries_are_kept_until_old(tmp_path):
    base = tmp_path / "m"
    (base / ".reserved-2").mkdir(parents=True)
    (base / ".reserved-2" / versions.OWNER_FILE).write_text("0badc0de-1\n")  # pid 1 on some other host
    assert clean_stale(base) == [] and next_version(base) == 3
