"""A/B comparisons measured in one run: the two arms alternate, and the ratio is taken per round.

Shared machines drift (other jobs come and go), so arm A and arm B are
measured back to back, A B A B ..., and the reported ratio is the median of
the per-round ratios rather than a ratio of two far-apart numbers.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vswin.bench.loadgen import SYSTEM_CLOCK, Clock, LoadSettings, closed_loop
from vswin.bench.payload import ClipPool
from vswin.bench.stats import SettingResult
from vswin.bench.transport import Transport

log = logging.getLogger(__name__)


@dataclass
class Arm:
    """One side of a comparison: an open transport, the clips it sends, its load, and the clock it is timed by."""

    name: str
    transport: Transport
    pool: ClipPool
    concurrency: int
    settings: LoadSettings
    clock: Clock = SYSTEM_CLOCK  # a virtual one in tests


@dataclass
class Comparison:
    key: str
    question: str
    a: str
    b: str
    rounds: list[dict[str, SettingResult]]
    metadata: dict[str, dict[str, object]]

    def ratio(self, metric: Callable[[SettingResult], float]) -> float:
        """Median over rounds of metric(B) / metric(A)."""
        return statistics.median(metric(r[self.b]) / metric(r[self.a]) for r in self.rounds)

    def median(self, arm: str, metric: Callable[[SettingResult], float]) -> float:
        return statistics.median(metric(r[arm]) for r in self.rounds)

    def summary(self) -> dict[str, object]:
        def arm(name: str) -> dict[str, float]:
            return {
                "clips_per_s": self.median(name, lambda r: r.clips_per_s),
                "latency_p50_ms": self.median(name, lambda r: r.latency_ms.p50),
                "latency_p99_ms": self.median(name, lambda r: r.latency_ms.p99),
                "serialize_ms": self.median(name, lambda r: r.serialize_ms),
                "round_trip_ms": self.median(name, lambda r: r.round_trip_ms),
                "request_bytes": self.median(name, lambda r: r.request_bytes),
                "errors": sum(r[name].errors_total for r in self.rounds),
                "stable_rounds": sum(r[name].stable for r in self.rounds),
            }

        return {
            "question": self.question,
            "a": self.a,
            "b": self.b,
            "arms": {self.a: arm(self.a), self.b: arm(self.b)},
            "ratios_b_over_a": {
                "clips_per_s": self.ratio(lambda r: r.clips_per_s),
                "latency_p50": self.ratio(lambda r: r.latency_ms.p50),
                "latency_p99": self.ratio(lambda r: r.latency_ms.p99),
                "request_bytes": self.ratio(lambda r: r.request_bytes),
            },
        }

    def to_dict(self) -> dict[str, object]:
        from vswin.bench.report import jsonable

        return jsonable(
            {
                "key": self.key,
                "summary": self.summary(),
                "metadata": self.metadata,
                "rounds": [{name: dataclasses.asdict(r) for name, r in rnd.items()} for rnd in self.rounds],
            }
        )


def compare(key: str, question: str, a: Arm, b: Arm, rounds: int = 2) -> Comparison:
    """Measure A then B, `rounds` times, each a closed loop at its concurrency."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if a.name == b.name:
        raise ValueError(f"the two arms need different names, both are {a.name!r}")
    measured = []
    for round_ in range(rounds):
        results = {}
        for arm in (a, b):
            results[arm.name] = r = closed_loop(arm.transport, arm.pool, arm.concurrency, arm.settings, arm.clock)
            log.info("(%s) round %d %s: %.2f clips/s, p50 %.1f ms, %d requests, %s",
                     key, round_ + 1, arm.name, r.clips_per_s, r.latency_ms.p50, r.requests, r.stop_reason)
        measured.append(results)
    metadata = {arm.name: {**arm.transport.metadata(), "concurrency": arm.concurrency,
                           "settings": dataclasses.asdict(arm.settings)} for arm in (a, b)}  # fmt: skip
    return Comparison(key, question, a.name, b.name, measured, metadata)


def plot(comparisons: list[Comparison], path: Path) -> Path:
    """One pair of bars per comparison: clips/s and p50 latency of each arm (medians over rounds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(comparisons), figsize=(3.6 * len(comparisons), 6), squeeze=False)
    for column, c in enumerate(comparisons):
        names = [c.a, c.b]
        for row, (label, metric) in enumerate(
            (("clips/s", lambda r: r.clips_per_s), ("p50 latency (ms)", lambda r: r.latency_ms.p50))
        ):
            ax = axes[row][column]
            ax.bar(names, [c.median(n, metric) for n in names], color=["tab:blue", "tab:orange"])
            ax.set_ylabel(label)
            ax.tick_params(axis="x", labelsize=8)
            if row == 0:
                ax.set_title(f"({c.key}) B/A = {c.ratio(metric):.2f}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
