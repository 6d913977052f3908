"""benchmarks/beam_vs_extract.py on the micro model: the arms asked for run, and Beam's setups stay per worker."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.beam.conftest import SIGNATURE
from tests.conftest import MICRO_MODEL_NAME, REPO_ROOT

pytestmark = pytest.mark.slow


def test_side_by_side_reports_the_arms_and_setups_per_worker(served, real_videos, tmp_path, beam_env):
    # As small as shows setups per worker: extract and two Beam workers on two copies of one video, 12 views in
    # requests of at most 4, so the Beam job sends more requests than it has worker processes.
    out = tmp_path / "beam_vs_extract.json"
    process = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "beam_vs_extract.py"), "--server", served,
         "--model", MICRO_MODEL_NAME, "--video", str(real_videos["bikes"]), "--copies", "2", "--rounds", "1",
         "--arms", "extract,beam_2", "--signature", SIGNATURE, "--clips", "2", "--crops", "3", "--max-batch", "4",
         "--out", str(out)],
        env=beam_env, capture_output=True, text=True)

    assert process.returncode == 0, process.stderr[-4000:]
    report = json.loads(out.read_text())
    summary = report["summary"]
    assert set(summary) == {"extract", "beam_2"} and len(report["rounds"]) == 1
    entry = summary["beam_2"]
    assert entry["workers"] == 2 and entry["elements"] == {"requests": entry["elements"]["requests"], "clips": 12,
                                                           "videos": 2}
    assert 1 <= entry["setups"]["model"] <= entry["workers"] < entry["elements"]["requests"]
    assert 1 <= entry["setups"]["decode"] <= entry["workers"]
    assert summary["extract"]["clips_per_s"] > 0 and entry["speedup_vs_extract"] > 0
    assert "| beam_2 |" in process.stdout and "| beam_1 |" not in process.stdout


def test_the_summary_of_every_arm_gives_beams_overhead_at_one_worker():
    import importlib.util

    spec = importlib.util.spec_from_file_location("beam_vs_extract", REPO_ROOT / "benchmarks" / "beam_vs_extract.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    counters = {"model_setups": 1, "decode_setups": 1, "requests": 3, "clips": 12, "videos_ok": 2}
    rounds = [{"extract": {"seconds": 2.0, "videos": 2, "clips": 12},
               "beam_1": {"seconds": 5.0, "videos": 2, "clips": 12, "counters": counters},
               "beam_2": {"seconds": 4.0, "videos": 2, "clips": 12, "counters": counters}}]
    summary = script.summarize(rounds)
    assert summary["beam_1"]["overhead_seconds_vs_extract"] == 3.0 and summary["beam_2"]["speedup_vs_extract"] == 0.5
    assert "Beam's overhead at 1 worker: +3.0 s per job" in script.table(summary)
    without_extract = script.summarize([{arm: run for arm, run in rounds[0].items() if arm != "extract"}])
    assert "speedup_vs_extract" not in without_extract["beam_2"] and "| beam_1 | 5.0 |" in script.table(without_extract)
