"""Measurement windows, latency percentiles and the stability rule, in the manner of Triton's perf_analyzer.

A setting (one concurrency or one request rate) is measured in windows of
fixed length; after each window the last three are compared, and the
setting counts as stable when each of their throughputs and average
latencies lies within `stability_pct` percent of the three's mean
(perf_analyzer's default rule, and its 5 s windows and 10%). The reported
figures pool the requests of those last three windows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

PERCENTILES = (50, 90, 95, 99)
STABLE_WINDOWS = 3


@dataclass(frozen=True)
class Record:
    """One finished request: times are time.monotonic() seconds; `code` is 'OK' or a gRPC status name."""

    scheduled: float  # when it was due (open loop: its Poisson arrival; closed loop: when it was sent)
    sent: float
    done: float
    clips: int
    code: str = "OK"
    preprocess_s: float = 0.0
    serialize_s: float = 0.0
    round_trip_s: float = 0.0
    deserialize_s: float = 0.0
    request_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.code == "OK"

    @property
    def latency_s(self) -> float:
        """Client-observed latency of the request, from send to answer."""
        return self.done - self.sent

    @property
    def queue_s(self) -> float:
        """Time the request waited on the client past its due time (open loop backlog)."""
        return self.sent - self.scheduled


@dataclass(frozen=True)
class LatencySummary:
    """Latency statistics in milliseconds."""

    count: int
    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, seconds: list[float] | np.ndarray) -> LatencySummary:
        values = np.asarray(seconds, dtype=np.float64) * 1e3
        if values.size == 0:
            nan = float("nan")
            return cls(0, nan, nan, nan, nan, nan, nan)
        p = percentiles(values)
        return cls(int(values.size), float(values.mean()), p[50], p[90], p[95], p[99], float(values.max()))


def percentiles(values: list[float] | np.ndarray, qs: tuple[int, ...] = PERCENTILES) -> dict[int, float]:
    """Nearest-rank percentiles (the smallest observed value with at least q% of values at or below it).

    The nearest-rank rule is what perf_analyzer reports: every percentile is a
    latency some request actually had, never an interpolation between two.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError("percentiles of an empty set of values")
    return {q: float(np.percentile(values, q, method="inverted_cdf")) for q in qs}


@dataclass
class Window:
    """The requests that finished within one measurement window [start, end)."""

    start: float
    end: float
    records: list[Record] = field(default_factory=list)
    max_backlog: int = 0  # most requests due but not yet answered at once (open loop)

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    @property
    def ok(self) -> list[Record]:
        return [r for r in self.records if r.ok]

    @property
    def clips_per_s(self) -> float:
        return sum(r.clips for r in self.ok) / self.duration_s

    @property
    def requests_per_s(self) -> float:
        return len(self.ok) / self.duration_s

    @property
    def mean_latency_ms(self) -> float:
        ok = self.ok
        return float(np.mean([r.latency_s for r in ok])) * 1e3 if ok else float("nan")


def within(values: list[float], pct: float) -> bool:
    """True when every value lies within pct percent of the values' mean."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0 or not np.all(np.isfinite(arr)):
        return False
    mean = arr.mean()
    if mean == 0:
        return bool(np.all(arr == 0))
    return bool(np.all(np.abs(arr - mean) <= pct / 100.0 * abs(mean)))


def is_stable(windows: list[Window], pct: float) -> bool:
    """perf_analyzer's rule: the last three windows agree on throughput and on latency within pct percent."""
    if len(windows) < STABLE_WINDOWS:
        return False
    last = windows[-STABLE_WINDOWS:]
    if any(not w.ok for w in last):
        return False
    return within([w.requests_per_s for w in last], pct) and within([w.mean_latency_ms for w in last], pct)


@dataclass(frozen=True)
class SettingResult:
    """The figures reported for one setting, pooled over the last (up to three) measurement windows."""

    mode: str  # "concurrency" or "rate"
    value: float  # the concurrency, or the offered rate in requests/s
    batch_size: int
    stable: bool
    windows: int  # measurement windows taken
    stop_reason: str  # "stable", "max_trials", "max_requests" or "max_duration"
    measured_s: float
    requests: int  # finished in the reported windows
    ok: int
    errors: dict[str, int]
    requests_per_s: float
    clips_per_s: float
    achieved_rate: float  # requests/s sent during the reported windows
    latency_ms: LatencySummary
    queue_ms: LatencySummary  # client-side wait before sending (open loop backlog)
    max_backlog: int
    preprocess_ms: float
    serialize_ms: float
    round_trip_ms: float
    deserialize_ms: float
    request_bytes: float
    sent_total: int  # every request sent for this setting, warmup included
    ok_total: int
    errors_total: int
    unsent_total: int  # open loop: arrivals still queued on the client when the setting ended

    def row(self) -> dict[str, object]:
        """Flat dict for CSV and tables."""
        out: dict[str, object] = {
            "mode": self.mode, "value": self.value, "batch_size": self.batch_size, "stable": self.stable,
            "windows": self.windows, "stop_reason": self.stop_reason, "measured_s": round(self.measured_s, 3),
            "requests": self.requests, "ok": self.ok, "errors": sum(self.errors.values()),
            "errors_by_code": ";".join(f"{k}={v}" for k, v in sorted(self.errors.items())),
            "requests_per_s": self.requests_per_s, "clips_per_s": self.clips_per_s,
            "achieved_rate": self.achieved_rate,
        }  # fmt: skip
        for name in ("mean", "p50", "p90", "p95", "p99", "max"):
            out[f"latency_{name}_ms"] = getattr(self.latency_ms, name)
        out.update(
            queue_p50_ms=self.queue_ms.p50, queue_p99_ms=self.queue_ms.p99, max_backlog=self.max_backlog,
            preprocess_ms=self.preprocess_ms, serialize_ms=self.serialize_ms, round_trip_ms=self.round_trip_ms,
            deserialize_ms=self.deserialize_ms, request_bytes=self.request_bytes,
            sent_total=self.sent_total, ok_total=self.ok_total, errors_total=self.errors_total,
            unsent_total=self.unsent_total,
        )  # fmt: skip
        return out


def summarize(
    mode: str,
    value: float,
    batch_size: int,
    windows: list[Window],
    stop_reason: str,
    all_records: list[Record],
    unsent: int = 0,
) -> SettingResult:
    """Pool the last three windows into the reported figures; `all_records` gives the run's totals."""
    if not windows:
        raise ValueError(f"{mode}={value}: no measurement window completed; raise --max-duration-s or --max-requests")
    last = windows[-STABLE_WINDOWS:]
    records = [r for w in last for r in w.records]
    ok = [r for r in records if r.ok]
    measured = sum(w.duration_s for w in last)
    span = (last[0].start, last[-1].end)
    sent_in_windows = sum(1 for r in all_records if span[0] <= r.sent < span[1])

    def mean_ms(attr: str) -> float:
        return float(np.mean([getattr(r, attr) for r in ok]) * 1e3) if ok else float("nan")

    return SettingResult(
        mode=mode,
        value=value,
        batch_size=batch_size,
        stable=stop_reason == "stable",
        windows=len(windows),
        stop_reason=stop_reason,
        measured_s=measured,
        requests=len(records),
        ok=len(ok),
        errors=dict(Counter(r.code for r in records if not r.ok)),
        requests_per_s=len(ok) / measured,
        clips_per_s=sum(r.clips for r in ok) / measured,
        achieved_rate=sent_in_windows / measured,
        latency_ms=LatencySummary.of([r.latency_s for r in ok]),
        queue_ms=LatencySummary.of([r.queue_s for r in records]),
        max_backlog=max(w.max_backlog for w in last),
        preprocess_ms=mean_ms("preprocess_s"),
        serialize_ms=mean_ms("serialize_s"),
        round_trip_ms=mean_ms("round_trip_s"),
        deserialize_ms=mean_ms("deserialize_s"),
        request_bytes=float(np.mean([r.request_bytes for r in ok])) if ok else float("nan"),
        sent_total=len(all_records),
        ok_total=sum(1 for r in all_records if r.ok),
        errors_total=sum(1 for r in all_records if not r.ok),
        unsent_total=unsent,
    )
