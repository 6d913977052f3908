"""Expensive, independent subprocess jobs of the session, run ahead on the core the suite leaves idle.

Some tests assert on what one long subprocess produced (a `vswin bench model` run with every kind of arm,
the JAX parity run, the GPU script, `vswin demo`, the fine-tuning recipe, ...). Nothing in the session
feeds them, so their start does not have to wait for their tests. A test module registers such a job
under the name of the fixture that reads it (`register`); at the session's first test, a background
thread runs the jobs the selected tests need, one at a time, in the order of those tests; a test that
needs a job waits for it, or runs it itself if the thread has not reached it yet (tests/conftest.py runs
the modules of such tests last, so that they rarely wait). The suite keeps about one of two cores busy,
so the jobs mostly use the other. A job's command, and what its tests assert on
its output, are the same whenever it runs. `VSWIN_TEST_PREFETCH=0` turns the thread off: each job then
runs when its test needs it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

ENABLED = os.environ.get("VSWIN_TEST_PREFETCH", "1") != "0"


@dataclass(frozen=True)
class Spec:
    """How to run a job: `command(work)` with `env` added to the session's subprocess environment, in `work`
    when `in_work_dir` (`work` is an empty directory of its own)."""

    command: Callable[[Path], list[str]]
    env: dict[str, str] = field(default_factory=dict)
    in_work_dir: bool = False


SPECS: dict[str, Spec] = {}  # by the name of the fixture that reads the job


def register(name: str, command: Callable[[Path], list[str]], env: dict[str, str] | None = None,
             in_work_dir: bool = False) -> str:  # fmt: skip
    """Declare the job that fixture `name` reads (at import, so the session knows it before its first test)."""
    if name in SPECS:
        raise ValueError(f"a job for fixture {name!r} is already registered")
    SPECS[name] = Spec(command, dict(env or {}), in_work_dir)
    return name


@dataclass(frozen=True)
class Finished:
    """A job's exit code and output (stdout and stderr as text)."""

    returncode: int
    stdout: str
    stderr: str


@dataclass
class Job:
    """One subprocess: `command` run in `cwd` with `env`, its output kept in `work` (stdout.txt, stderr.txt)."""

    name: str
    command: list[str]
    env: dict[str, str]
    work: Path
    cwd: Path | None = None
    _claim: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _state: threading.Lock = field(default_factory=threading.Lock, repr=False)  # guards _process and _stopped
    _done: threading.Event = field(default_factory=threading.Event, repr=False)
    _process: subprocess.Popen | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)
    _finished: Finished | None = field(default=None, repr=False)
    _error: Exception | None = field(default=None, repr=False)

    def run_unless_started(self) -> None:
        """Run the job here, unless another thread already has (or is running) it."""
        if not self._claim.acquire(blocking=False):
            return
        try:
            stdout, stderr = self.work / "stdout.txt", self.work / "stderr.txt"
            with open(stdout, "w") as out, open(stderr, "w") as err:
                with self._state:
                    if self._stopped:
                        return
                    # Its own process group, so that stop() ends the job's children too.
                    self._process = subprocess.Popen(self.command, env=self.env, cwd=self.cwd, stdout=out,
                                                     stderr=err, start_new_session=True)  # fmt: skip
                returncode = self._process.wait()
            if not self._stopped:
                self._finished = Finished(returncode, stdout.read_text(), stderr.read_text())
        except Exception as err:  # e.g. no such command: reported to the test that reads the job
            self._error = err
        finally:
            self._done.set()

    def result(self) -> Finished:
        """The finished job: run it now if nobody has started it, else wait for it."""
        self.run_unless_started()
        self._done.wait()
        if self._finished is None:
            why = f"failed: {self._error!r}" if self._error else "was stopped before it finished"
            raise RuntimeError(f"job {self.name!r} {why}: {self.command}")
        return self._finished

    def stop(self) -> None:
        """Never start the job from now on, and end its process group if it is running."""
        with self._state:
            self._stopped = True
            if self._process is not None and self._process.poll() is None:
                os.killpg(self._process.pid, signal.SIGKILL)


class Prefetcher:
    """The session's jobs, started in order on one background thread."""

    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = {job.name: job for job in jobs}
        self._thread = threading.Thread(target=self._run_all, name="prefetch", daemon=True)

    @classmethod
    def for_tests(cls, fixture_names: Iterable[Iterable[str]], work: Path, env: dict[str, str]) -> Prefetcher:
        """The registered jobs that tests with these fixture closures read, in the order they first need them."""
        needed = dict.fromkeys(name for names in fixture_names for name in names if name in SPECS)
        jobs = []
        for name in needed:
            spec, job_work = SPECS[name], work / name
            job_work.mkdir(parents=True)
            jobs.append(Job(name, spec.command(job_work), {**env, **spec.env}, job_work,
                            job_work if spec.in_work_dir else None))  # fmt: skip
        return cls(jobs)

    def start(self) -> None:
        if ENABLED and self.jobs:
            self._thread.start()

    def result(self, name: str) -> Finished:
        return self.jobs[name].result()

    def stop(self) -> None:
        for job in self.jobs.values():
            job.stop()

    def _run_all(self) -> None:
        for job in self.jobs.values():
            job.run_unless_started()
