"""`vswin bench client` on a real video: clips per second of the client's own preprocessing."""

from __future__ import annotations

import json
import subprocess
import sys


def test_client_benchmark_measures_the_client_pipeline_on_a_real_video(real_videos, subprocess_env, tmp_path):
    command = [
        sys.executable, "-m", "vswin", "bench", "client", "--video", str(real_videos["bikes"]),
        "--clip-len", "8", "--size", "64", "--clips", "2", "--crops", "3", "--repeats", "1",
        "--out", str(tmp_path), "--name", "pre",
    ]  # fmt: skip
    done = subprocess.run(command, env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "clips/s" in done.stdout
    document = json.loads((tmp_path / "pre.json").read_text())
    assert document["machine"]["cores"] >= 1
    (result,) = document["results"]
    assert result["views"] == 6  # 2 clips x 3 crops
    assert result["request_bytes"] > 6 * 8 * 64 * 64 * 3  # every pixel on the wire, plus the request header
    assert result["decode_s"] > 0 and result["serialize_s"] > 0
    assert result["wall_clips_per_s"] > 0 and result["cpu_clips_per_s"] > 0


def test_client_benchmark_names_a_missing_video(subprocess_env, tmp_path):
    missing = tmp_path / "nope.mp4"
    command = [sys.executable, "-m", "vswin", "bench", "client", "--video", str(missing), "--out", str(tmp_path)]
    done = subprocess.run(command, env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "nope.mp4" in done.stderr
