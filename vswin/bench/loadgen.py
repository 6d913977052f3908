"""Closed-loop and open-loop load against a Transport, measured in windows until stable (perf_analyzer's method).

Closed loop: N workers each send a request, wait for its answer, and send
the next, so N requests are always in flight. Open loop: requests arrive
as a Poisson process at R per second whatever the server does; when it
can't keep up they wait on the client (backlog), and that wait is reported
as queueing apart from the request's own latency.

Either way: a warmup period, then measurement windows of fixed length,
repeated until the last three agree within `stability_pct` (stats.is_stable)
or `max_trials` windows have been taken; the run also stops at
`max_requests` requests or `max_duration_s` seconds for the setting, and
the result says which rule ended it. Requests in flight at the end are
awaited and counted in the totals (sent = ok + errors); open-loop arrivals
still queued on the client then are dropped unsent and counted as such.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from vswin.bench.payload import ClipPool
from vswin.bench.stats import Record, SettingResult, Window, is_stable, summarize
from vswin.bench.transport import RequestFailed, Transport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadSettings:
    """How long and how much to measure one setting (perf_analyzer's defaults where it has one)."""

    batch_size: int = 1
    measurement_interval_s: float = 5.0
    stability_pct: float = 10.0
    max_trials: int = 10
    warmup_s: float = 2.0
    max_requests: int = 100_000
    max_duration_s: float = 120.0
    max_inflight: int = 64  # open loop: most requests outstanding at once before arrivals queue on the client

    def __post_init__(self) -> None:
        checks = {
            "batch_size": self.batch_size >= 1,
            "measurement_interval_s": self.measurement_interval_s > 0,
            "stability_pct": self.stability_pct > 0,
            "max_trials": self.max_trials >= 3,
            "warmup_s": self.warmup_s >= 0,
            "max_requests": self.max_requests >= 1,
            "max_duration_s": self.max_duration_s > 0,
            "max_inflight": self.max_inflight >= 1,
        }
        bad = [name for name, good in checks.items() if not good]
        if bad:
            raise ValueError(f"invalid load settings {', '.join(f'{n}={getattr(self, n)!r}' for n in bad)} "
                             "(max_trials must be >= 3: stability compares three windows)")


class Clock(Protocol):
    """Where the load generator reads time and waits: the system clock, or a virtual one in tests."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    def task_started(self) -> None:
        """A thread starts taking turns on the clock (the measuring thread, a closed-loop worker, the arrival
        thread, a request handed to a worker thread): a simulated clock must not move past it until it waits."""

    def task_ended(self) -> None:
        """That thread has nothing more to do: a simulated clock need not wait for it any more."""


class SystemClock:
    """time.monotonic and time.sleep; real time needs no bookkeeping of tasks."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def task_started(self) -> None:
        pass

    def task_ended(self) -> None:
        pass


SYSTEM_CLOCK = SystemClock()
_STOP_CHECK_S = 0.05  # the longest the open loop's arrival thread sleeps before looking at the stop flag


class _Recorder:
    """Collects finished requests and tracks how many arrived but are unanswered (the backlog)."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.arrivals = 0
        self.max_backlog = 0
        self._lock = threading.Lock()

    def claim(self, limit: int) -> bool:
        """Count one more arriving request, unless `limit` requests have arrived already."""
        with self._lock:
            if self.arrivals >= limit:
                return False
            self.arrivals += 1
            self.max_backlog = max(self.max_backlog, self.arrivals - len(self.records))
            return True

    def done(self, record: Record) -> None:
        with self._lock:
            self.records.append(record)

    def since(self, cursor: int) -> list[Record]:
        """Records finished after the first `cursor` ones."""
        with self._lock:
            return self.records[cursor:]

    def take_max_backlog(self) -> int:
        """The largest backlog since the last call (one window's worth)."""
        with self._lock:
            peak, self.max_backlog = self.max_backlog, self.arrivals - len(self.records)
            return peak


def _one_request(transport: Transport, pool: ClipPool, batch_size: int, scheduled: float, clock: Clock) -> Record:
    sent = clock.now()
    t0 = time.perf_counter()
    batch = pool.batch(batch_size)
    preprocess = time.perf_counter() - t0
    try:
        t = transport.send(batch)
    except RequestFailed as err:
        return Record(scheduled, sent, clock.now(), batch_size, code=err.code, preprocess_s=preprocess)
    except Exception as err:  # a transport bug or a broken connection still counts as one failed request
        log.debug("request failed: %r", err)
        return Record(scheduled, sent, clock.now(), batch_size, code=type(err).__name__, preprocess_s=preprocess)
    return Record(
        scheduled, sent, clock.now(), batch_size, "OK",
        preprocess, t.serialize_s, t.round_trip_s, t.deserialize_s, t.request_bytes,
    )  # fmt: skip


def _measure(
    recorder: _Recorder, settings: LoadSettings, stop: threading.Event, started: float, warmup_requests: int,
    clock: Clock,
) -> tuple[list[Window], str]:
    """Warm up, then cut windows until stable or a bound is hit; sets `stop`.

    Warmup lasts `warmup_s` and at least until `warmup_requests` requests have
    finished, so a first call that compiles (XLA) or loads never lands in a
    window. Each window holds the requests that finished within it.
    """
    deadline = started + settings.max_duration_s
    clock.sleep(max(0.0, min(settings.warmup_s, deadline - clock.now())))
    while len(recorder.since(0)) < warmup_requests and clock.now() < deadline:
        clock.sleep(0.01)
    recorder.take_max_backlog()
    cursor = len(recorder.since(0))
    pending: list[Record] = []
    windows: list[Window] = []
    reason = "max_trials"
    while len(windows) < settings.max_trials:
        start = clock.now()
        end = start + settings.measurement_interval_s
        if end > deadline:
            reason = "max_duration"
            break
        while clock.now() < end and recorder.arrivals < settings.max_requests:
            clock.sleep(min(0.01, max(0.0, end - clock.now())))
        end = min(end, clock.now())
        new = recorder.since(cursor)
        cursor += len(new)
        candidates = pending + new
        pending = [r for r in candidates if r.done >= end]
        finished = [r for r in candidates if start <= r.done < end]
        windows.append(Window(start, end, finished, max_backlog=recorder.take_max_backlog()))
        if recorder.arrivals >= settings.max_requests:
            reason = "max_requests"  # the cut-short window still counts: it holds real measurements
            break
        if is_stable(windows, settings.stability_pct):
            reason = "stable"
            break
    stop.set()
    return windows, reason


def closed_loop(transport: Transport, pool: ClipPool, concurrency: int, settings: LoadSettings,
                clock: Clock = SYSTEM_CLOCK) -> SettingResult:
    """`concurrency` requests always in flight, measured until stable."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    recorder, stop = _Recorder(), threading.Event()

    def worker() -> None:
        try:
            while not stop.is_set() and recorder.claim(settings.max_requests):
                recorder.done(_one_request(transport, pool, settings.batch_size, clock.now(), clock))
        finally:
            clock.task_ended()

    started = clock.now()
    threads = [threading.Thread(target=worker, daemon=True, name=f"bench-c{i}") for i in range(concurrency)]
    clock.task_started()  # this thread measures
    for thread in threads:
        clock.task_started()
        thread.start()
    windows, reason = _measure(recorder, settings, stop, started, concurrency, clock)
    clock.task_ended()
    for thread in threads:
        thread.join()
    return summarize("concurrency", concurrency, settings.batch_size, windows, reason, recorder.records)


def poisson_arrivals(rate: float, rng: np.random.Generator) -> Callable[[], float]:
    """A function giving successive gaps (seconds) of a Poisson process at `rate` per second."""
    if rate <= 0:
        raise ValueError(f"request rate must be > 0 per second, got {rate}")
    return lambda: float(rng.exponential(1.0 / rate))


def open_loop(
    transport: Transport, pool: ClipPool, rate: float, settings: LoadSettings, seed: int = 0,
    clock: Clock = SYSTEM_CLOCK,
) -> SettingResult:
    """Poisson arrivals at `rate` requests/s, measured until stable; late requests are queued, not dropped.

    At most `max_inflight` requests are outstanding; later arrivals wait in a client-side backlog, and a
    worker that finishes takes the oldest waiting arrival at once, so the wait is measured as queueing.
    """
    gap = poisson_arrivals(rate, np.random.default_rng(seed))
    recorder, stop = _Recorder(), threading.Event()
    executor = ThreadPoolExecutor(max_workers=settings.max_inflight, thread_name_prefix="bench-r")
    lock = threading.Lock()
    backlog: deque[float] = deque()  # scheduled times of arrivals waiting for a free worker
    inflight = 0

    def run(scheduled: float) -> None:
        nonlocal inflight
        while True:
            recorder.done(_one_request(transport, pool, settings.batch_size, scheduled, clock))
            with lock:
                if stop.is_set() or not backlog:  # arrivals still waiting at the end are never sent
                    inflight -= 1
                    clock.task_ended()
                    return
                scheduled = backlog.popleft()

    def arrive(due: float) -> None:
        nonlocal inflight
        with lock:
            if inflight >= settings.max_inflight:
                backlog.append(due)
                return
            inflight += 1
            clock.task_started()
        executor.submit(run, due)

    def schedule() -> None:
        due = clock.now()
        try:
            while not stop.is_set():
                due += gap()
                while not stop.is_set() and (delay := due - clock.now()) > 0:
                    clock.sleep(min(delay, _STOP_CHECK_S))  # a slow rate still notices the end of the run soon
                if stop.is_set() or not recorder.claim(settings.max_requests):
                    return
                arrive(due)
        finally:
            clock.task_ended()

    started = clock.now()
    scheduler = threading.Thread(target=schedule, daemon=True, name="bench-arrivals")
    clock.task_started()  # this thread measures
    clock.task_started()
    scheduler.start()
    windows, reason = _measure(recorder, settings, stop, started, 1, clock)
    clock.task_ended()
    scheduler.join()
    executor.shutdown(wait=True)
    unsent = recorder.arrivals - len(recorder.records)
    return summarize("rate", rate, settings.batch_size, windows, reason, recorder.records, unsent)
