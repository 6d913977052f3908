"""A discrete-event clock for load-generator tests: exact latencies and windows on a machine of any load.

Every thread of the run (the closed loop's workers, which sleep in the fake
endpoint, the measuring thread, the open loop's arrival and request threads)
waits on this clock. The load generator reports each with task_started
(before the thread runs) and task_ended (when it has nothing more to do), and
they count as taking turns in between. Time stands still while any of them
runs and jumps to the earliest wake-up time once all of them sleep, so the
figures do not depend on how fast the machine is. A sleeper that hears
nothing for _IDLE_S real seconds moves time on by itself (a safety net: a
run's end is reported, not waited for).
"""

from __future__ import annotations

import threading

_IDLE_S = 1.0


class VirtualClock:
    def __init__(self) -> None:
        self._threads = 0  # how many threads take turns on this clock now
        self._now = 0.0
        self._wake_times: list[float] = []  # of the threads asleep now
        self._cond = threading.Condition()

    def now(self) -> float:
        with self._cond:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._cond:
            target = self._now + seconds
            self._wake_times.append(target)
            self._cond.notify_all()
            try:
                while self._now < target:
                    everyone_waits = len(self._wake_times) >= self._threads and min(self._wake_times) > self._now
                    if everyone_waits or not self._cond.wait(timeout=_IDLE_S):
                        self._jump()
            finally:
                self._wake_times.remove(target)
                self._cond.notify_all()

    def task_started(self) -> None:
        with self._cond:
            self._threads += 1

    def task_ended(self) -> None:
        with self._cond:
            self._threads -= 1
            self._cond.notify_all()

    def _jump(self) -> None:
        """Move time to the earliest wake-up time and wake whoever is due."""
        self._now = max(self._now, min(self._wake_times))
        self._cond.notify_all()
