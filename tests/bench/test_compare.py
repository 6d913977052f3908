"""A/B comparisons: arms alternate within one run and ratios are medians of per-round ratios."""

from __future__ import annotations

import json

import pytest

from vswin.bench.compare import Arm, compare, plot
from vswin.bench.loadgen import LoadSettings
from vswin.bench.payload import ClipPool, random_clips
from vswin.bench.transport import FakeTransport

from tests.bench.virtual_clock import VirtualClock

SETTINGS = LoadSettings(measurement_interval_s=0.2, warmup_s=0.05, max_trials=3, stability_pct=100)


def virtual_arm(name: str, latency_s: float, pool: ClipPool, settings: LoadSettings) -> Arm:
    """An arm whose endpoint takes `latency_s` per request on its own virtual clock (tests/bench/virtual_clock.py)."""
    clock = VirtualClock()
    return Arm(name, FakeTransport(latency=lambda i: latency_s, sleep=clock.sleep, now=clock.now), pool, 1, settings,
               clock)  # fmt: skip


def test_ratio_of_a_twice_as_slow_arm_is_about_two(tmp_path):
    # Latencies of 0.1 s and 0.2 s on virtual clocks: exact whatever the machine's load.
    settings = LoadSettings(measurement_interval_s=0.6, warmup_s=0.05, max_trials=3, stability_pct=100)
    pool = ClipPool(random_clips((2, 4, 4)))
    fast, slow = virtual_arm("fast", 0.1, pool, settings), virtual_arm("slow", 0.2, pool, settings)
    result = compare("x", "does latency double?", fast, slow, rounds=2)
    assert len(result.rounds) == 2
    summary = result.summary()
    assert summary["ratios_b_over_a"]["latency_p50"] == pytest.approx(2.0, rel=0.3)
    assert summary["ratios_b_over_a"]["clips_per_s"] == pytest.approx(0.5, rel=0.3)
    assert summary["arms"]["fast"]["errors"] == 0
    json.dumps(result.to_dict(), allow_nan=False)
    assert plot([result, result], tmp_path / "c.png").read_bytes().startswith(b"\x89PNG")


def test_arms_need_distinct_names():
    pool = ClipPool(random_clips((2, 4, 4)))
    arm = Arm("same", FakeTransport(latency=lambda i: 0.001), pool, 1, SETTINGS)
    with pytest.raises(ValueError, match="'same'"):
        compare("x", "?", arm, arm)
