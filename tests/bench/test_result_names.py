"""Result file names a new user met: no `_concurrency_concurrency.png`, no ./benchmarks/results by default (issue 12)."""

from __future__ import annotations

from pathlib import Path

from vswin.bench import report
from vswin.bench.loadgen import LoadSettings, closed_loop
from vswin.bench.payload import ClipPool, random_clips
from vswin.bench.transport import FakeTransport
from vswin.cli import build_parser


def test_a_stem_that_already_names_the_mode_is_not_suffixed_twice(tmp_path):
    transport = FakeTransport(latency=lambda i: 0.001)
    settings = LoadSettings(measurement_interval_s=0.1, warmup_s=0.0, max_trials=3, stability_pct=100)
    results = [closed_loop(transport, ClipPool(random_clips((2, 8, 8))), 1, settings)]
    stem = "served_vswin_tiny_serving_default_b1_concurrency"  # what `vswin bench serve` names a closed-loop run
    assert [p.name for p in report.plot(results, tmp_path, stem)] == [f"{stem}.png"]
    assert [p.name for p in report.plot(results, tmp_path, "run")] == ["run_concurrency.png"]


def test_bench_client_writes_to_the_current_directory_by_default():
    args = build_parser().parse_args(["bench", "client", "--video", "clip.mp4"])
    assert args.out == Path(".")
