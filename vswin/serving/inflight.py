"""The Predict requests running right now, so a shutdown can say what it cancelled and wait for the rest."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RunningRequest:
    """One request between its start and its answer."""

    model: str
    version: int
    signature: str
    rows: int
    started: float = field(default_factory=time.monotonic)

    def describe(self, now: float | None = None) -> str:
        running = (time.monotonic() if now is None else now) - self.started
        return f"{self.model} version {self.version} {self.signature} ({self.rows} rows, running {running:.1f} s)"


class InFlight:
    """A thread-safe set of running requests."""

    def __init__(self) -> None:
        self._ids = itertools.count()
        self._running: dict[int, RunningRequest] = {}
        self._changed = threading.Condition()

    @contextmanager
    def track(self, request: RunningRequest) -> Iterator[None]:
        key = next(self._ids)
        with self._changed:
            self._running[key] = request
        try:
            yield
        finally:
            with self._changed:
                del self._running[key]
                self._changed.notify_all()

    def snapshot(self) -> list[RunningRequest]:
        with self._changed:
            return sorted(self._running.values(), key=lambda request: request.started)

    def wait_idle(self, timeout: float) -> bool:
        """Block until no request runs (True) or `timeout` seconds pass (False)."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._running, timeout)
