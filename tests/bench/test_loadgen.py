"""The load generator against a fake transport with known latencies: counts, bounds, stability, rates.

Tests that check timing figures run on a virtual clock (tests/bench/virtual_clock.py), closed and open
loop alike, so the figures are exact on a machine of any load.
"""

from __future__ import annotations

import numpy as np
import pytest

from vswin.bench.loadgen import LoadSettings, closed_loop, open_loop, poisson_arrivals
from vswin.bench.payload import MEAN, STD, ClipPool, random_clips
from vswin.bench.transport import FakeTransport

from tests.bench.virtual_clock import VirtualClock

FAST = dict(measurement_interval_s=0.25, warmup_s=0.1, max_duration_s=6.0)


@pytest.fixture()
def pool() -> ClipPool:
    return ClipPool(random_clips((2, 8, 8), count=3))


def virtual(latency) -> tuple[FakeTransport, VirtualClock]:
    """A fake endpoint whose latencies pass on a virtual clock, and that clock (the load generator reports
    its threads to it)."""
    clock = VirtualClock()
    return FakeTransport(latency=latency, sleep=clock.sleep, now=clock.now), clock


def test_closed_loop_counts_add_up_and_errors_are_counted_by_code(pool):
    codes = {0: "UNAVAILABLE", 1: "DEADLINE_EXCEEDED"}
    transport = FakeTransport(latency=lambda i: 0.003, error=lambda i: codes.get(i % 7))
    result = closed_loop(transport, pool, 3, LoadSettings(**FAST))
    assert result.sent_total == transport.calls == result.ok_total + result.errors_total
    assert result.requests == result.ok + sum(result.errors.values())
    assert set(result.errors) == {"UNAVAILABLE", "DEADLINE_EXCEEDED"}
    assert result.errors_total == pytest.approx(result.sent_total * 2 / 7, abs=3)


def test_closed_loop_latency_and_throughput_follow_injected_latency(pool):
    transport, clock = virtual(lambda i: 0.1)
    settings = LoadSettings(batch_size=3, measurement_interval_s=1.0, warmup_s=0.1, max_duration_s=12.0)
    result = closed_loop(transport, pool, 1, settings, clock)
    assert result.stop_reason == "stable" and result.stable
    assert result.latency_ms.p50 == pytest.approx(100.0) and result.latency_ms.max == pytest.approx(100.0)
    assert result.round_trip_ms == pytest.approx(100.0)
    # one in flight, 100 ms each, three clips per request: 30 clips/s (a window edge may cut one request)
    assert result.clips_per_s == pytest.approx(30, rel=0.1)
    assert result.request_bytes == 3 * 2 * 8 * 8 * 3


def test_unsteady_latency_runs_to_the_window_cap_and_says_so(pool):
    # every 25 requests the latency doubles: the windows never agree
    transport, clock = virtual(lambda i: 0.002 * 2 ** min(i // 25, 5))
    result = closed_loop(transport, pool, 1, LoadSettings(max_trials=4, **FAST), clock)
    assert result.stop_reason == "max_trials" and not result.stable
    assert result.windows == 4


def test_max_requests_bounds_a_setting_exactly(pool):
    transport = FakeTransport(latency=lambda i: 0.001)
    result = closed_loop(transport, pool, 4, LoadSettings(max_requests=60, **FAST))
    assert result.stop_reason == "max_requests"
    assert transport.calls == result.sent_total == 60


def test_max_duration_bounds_a_setting(pool):
    transport, clock = virtual(lambda i: 0.001 * (1 + i % 9))  # noisy: never settles within 0.1%
    settings = LoadSettings(measurement_interval_s=0.2, warmup_s=0.0, max_duration_s=0.7, stability_pct=0.1)
    result = closed_loop(transport, pool, 1, settings, clock)
    assert result.stop_reason == "max_duration"
    assert result.windows == 3


def test_open_loop_honours_the_offered_rate(pool):
    transport, clock = virtual(lambda i: 0.002)
    settings = LoadSettings(measurement_interval_s=2.0, warmup_s=0.1, max_trials=3, stability_pct=100)
    result = open_loop(transport, pool, 200.0, settings, clock=clock)
    assert result.windows == 3
    # 1200 Poisson arrivals expected in the 6 s measured: the count's standard deviation is 2.9 %
    assert result.achieved_rate == pytest.approx(200.0, rel=0.1)
    assert result.requests_per_s == pytest.approx(200.0, rel=0.1)
    assert result.latency_ms.p50 == pytest.approx(2.0) and result.latency_ms.max == pytest.approx(2.0)
    assert result.queue_ms.max == 0.0  # the server keeps up: nothing ever waits on the client
    assert result.max_backlog < 10
    assert result.sent_total == transport.calls == result.ok_total + result.errors_total
    assert result.unsent_total == 0


def test_open_loop_reports_backlog_when_the_server_cannot_keep_up(pool):
    # capacity: 2 in flight x 1/40 ms = 50 requests/s; offered 150/s
    transport, clock = virtual(lambda i: 0.04)
    settings = LoadSettings(measurement_interval_s=1.0, warmup_s=0.0, max_trials=3, stability_pct=100, max_inflight=2)
    result = open_loop(transport, pool, 150.0, settings, clock=clock)
    assert result.requests_per_s == pytest.approx(50.0, rel=0.05)
    assert result.achieved_rate == pytest.approx(50.0, rel=0.05)  # sent: no faster than answered
    # queueing is reported apart from latency: a request's latency is its own service time only
    assert result.latency_ms.p50 == pytest.approx(40.0) and result.latency_ms.max == pytest.approx(40.0)
    assert result.queue_ms.p50 > 100.0 and result.queue_ms.p99 > 500.0
    assert result.max_backlog > 100  # about 100 more arrivals than answers each second
    assert result.unsent_total > 100
    assert result.sent_total == transport.calls == result.ok_total + result.errors_total


def test_open_loop_stops_soon_after_the_run_at_a_slow_rate(pool):
    """At 0.5 requests/s the next arrival may be seconds away when the run ends: it is not waited for."""
    transport, clock = virtual(lambda i: 0.001)
    settings = LoadSettings(measurement_interval_s=2.0, warmup_s=0.0, max_trials=3, stability_pct=100)
    result = open_loop(transport, pool, 0.5, settings, seed=0, clock=clock)
    assert result.stop_reason == "max_trials"
    first_arrival = poisson_arrivals(0.5, np.random.default_rng(0))()
    run_end = first_arrival + 0.001 + 0.01 + 3 * 2.0  # first answer (polled every 10 ms), then three windows
    assert clock.now() <= run_end + 0.1  # the arrival thread looked at the stop flag within 50 ms


def test_float32_payload_is_normalized_with_the_model_mean_and_std():
    clips = random_clips((2, 4, 4), count=2)
    pool = ClipPool(clips, "float32")
    batch = pool.batch(3)  # wraps around the two clips
    assert batch.dtype == np.float32 and batch.shape == (3, 2, 4, 4, 3)
    np.testing.assert_allclose(batch[2], (clips[0].astype(np.float32) - MEAN) / STD, rtol=1e-6)


def test_bad_settings_name_the_offending_value():
    with pytest.raises(ValueError, match="max_trials=2"):
        LoadSettings(max_trials=2)
    with pytest.raises(ValueError, match="float16"):
        ClipPool(random_clips((2, 4, 4)), "float16")


def test_warmup_waits_for_each_workers_first_answer(pool):
    # the first call of each worker "compiles" for 0.4 s: it must not land in a measurement window
    transport, clock = virtual(lambda i: 0.4 if i < 2 else 0.005)
    settings = LoadSettings(measurement_interval_s=0.2, warmup_s=0.0, max_trials=3, stability_pct=100)
    result = closed_loop(transport, pool, 2, settings, clock)
    assert result.latency_ms.max < 100.0
    assert result.sent_total == result.ok_total


def test_percentiles_through_the_load_generator_follow_a_known_spread(pool):
    """Latencies cycle 20, 40, ..., 200 ms: whatever whole cycles the windows hold, p50 sits in the middle
    of that spread and p90/max at its top."""
    transport, clock = virtual(lambda i: 0.02 * (1 + i % 10))
    settings = LoadSettings(measurement_interval_s=2.2, warmup_s=0.0, max_trials=3, stability_pct=100,
                            max_duration_s=20.0)  # fmt: skip
    result = closed_loop(transport, pool, 1, settings, clock)
    latency = result.latency_ms
    assert result.requests >= 20
    assert 100.0 <= latency.p50 <= 120.0
    assert 180.0 <= latency.p90 <= latency.p95 <= latency.p99 <= latency.max == pytest.approx(200.0)
    assert latency.mean == pytest.approx(110.0, abs=10.0)
