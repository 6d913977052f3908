"""Percentiles, latency summaries and the stability rule on known numbers."""

from __future__ import annotations

import random

import pytest

from vswin.bench.stats import LatencySummary, Record, Window, is_stable, percentiles, summarize, within


def _record(latency_s: float, done: float = 0.5, code: str = "OK", clips: int = 1) -> Record:
    return Record(scheduled=done - latency_s, sent=done - latency_s, done=done, clips=clips, code=code)


def test_percentiles_are_nearest_rank_values_that_occurred():
    values = list(range(1, 101))
    random.Random(0).shuffle(values)
    assert percentiles(values) == {50: 50.0, 90: 90.0, 95: 95.0, 99: 99.0}
    # with ten values the 95th and 99th percentiles are the largest one, not an interpolation
    assert percentiles([10, 20, 30, 40, 50, 60, 70, 80, 90, 1000]) == {50: 50.0, 90: 90.0, 95: 1000.0, 99: 1000.0}


def test_percentiles_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        percentiles([])


def test_latency_summary_reports_milliseconds():
    summary = LatencySummary.of([i / 1000 for i in range(1, 101)])
    assert summary.count == 100
    assert summary.p50 == pytest.approx(50.0)
    assert summary.p99 == pytest.approx(99.0)
    assert summary.max == pytest.approx(100.0)
    assert summary.mean == pytest.approx(50.5)


def test_within_compares_each_value_to_the_mean():
    assert within([100, 105, 95], 10)
    assert not within([100, 100, 125], 10)
    assert not within([float("nan"), 1, 1], 10)


def _window(start: float, requests: int, latency_s: float) -> Window:
    return Window(start, start + 1.0, [_record(latency_s, done=start + 0.5) for _ in range(requests)])


def test_stable_needs_three_windows_agreeing_on_throughput_and_latency():
    steady = [_window(0, 100, 0.010), _window(1, 104, 0.0102), _window(2, 97, 0.0099)]
    assert not is_stable(steady[:2], 10)
    assert is_stable(steady, 10)
    throughput_drift = steady[:2] + [_window(2, 130, 0.010)]
    assert not is_stable(throughput_drift, 10)
    latency_drift = steady[:2] + [_window(2, 100, 0.013)]
    assert not is_stable(latency_drift, 10)
    # only the last three count: an unsteady start is forgiven
    assert is_stable([_window(-1, 10, 0.5), *steady], 10)


def test_summary_pools_last_three_windows_and_counts_errors_by_code():
    windows = [_window(0, 50, 0.5)] + [_window(i, 10, 0.010) for i in (1, 2, 3)]
    windows[-1].records.extend([_record(0.001, 3.5, "UNAVAILABLE"), _record(0.001, 3.5, "UNAVAILABLE"),
                                _record(0.001, 3.5, "DEADLINE_EXCEEDED")])
    everything = [r for w in windows for r in w.records]
    result = summarize("concurrency", 2, 1, windows, "stable", everything)
    assert result.requests == 33 and result.ok == 30
    assert result.errors == {"UNAVAILABLE": 2, "DEADLINE_EXCEEDED": 1}
    assert result.requests_per_s == pytest.approx(10.0)
    assert result.latency_ms.p99 == pytest.approx(10.0)  # the slow first window is not reported
    assert result.stable and result.windows == 4
    assert result.sent_total == result.ok_total + result.errors_total == 83


def test_summary_without_windows_says_what_to_raise():
    with pytest.raises(ValueError, match="max-duration-s"):
        summarize("rate", 4, 1, [], "max_duration", [])
