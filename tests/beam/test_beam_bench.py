"""benchmarks/beam_vs_extract.py on the micro model: every arm runs, and Beam's setups stay per worker."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.beam.conftest import SIGNATURE
from tests.conftest import MICRO_MODEL_NAME, REPO_ROOT

pytestmark = pytest.mark.slow


def test_side_by_side_reports_every_arm_and_setups_per_worker(served, real_videos, tmp_path, subprocess_env):
    # As small as shows setups per worker: two copies of one video, 12 views in requests of at most 4, so each
    # Beam job sends more requests than it has worker processes.
    out = tmp_path / "beam_vs_extract.json"
    process = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "beam_vs_extract.py"), "--server", served,
         "--model", MICRO_MODEL_NAME, "--video", str(real_videos["bikes"]), "--copies", "2", "--rounds", "1",
         "--signature", SIGNATURE, "--clips", "2", "--crops", "3", "--max-batch", "4", "--out", str(out)],
        env=subprocess_env, capture_output=True, text=True)

    assert process.returncode == 0, process.stderr[-4000:]
    report = json.loads(out.read_text())
    summary = report["summary"]
    assert set(summary) == {"extract", "beam_1", "beam_2"} and len(report["rounds"]) == 1
    for arm in ("beam_1", "beam_2"):
        entry = summary[arm]
        assert entry["elements"] == {"requests": entry["elements"]["requests"], "clips": 12, "videos": 2}
        assert 1 <= entry["setups"]["model"] <= entry["workers"] < entry["elements"]["requests"]
        assert 1 <= entry["setups"]["decode"] <= entry["workers"]
    assert summary["extract"]["clips_per_s"] > 0 and "overhead_seconds_vs_extract" in summary["beam_1"]
    assert "| beam_2 |" in process.stdout
