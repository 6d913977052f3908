"""A persistent benchmark worker: one process per process setting, driven over a pipe with JSON lines.

Settings that a framework reads once per process (the Keras backend,
TF_ENABLE_ONEDNN_OPTS, XLA_FLAGS, the allocator) make each arm's process
different, and in-process comparisons of them are impossible. So every arm
lives in a worker started with its environment; the parent asks it to
`prepare` an arm for a case (build, first call), to `time` calls, to
`release` it, and to `exit`. A worker that crashes (a segfault in an XLA
option, say) fails its arms, not the run.

Child side: `python -m vswin.bench.worker`. Its protocol channel is the
original stdout; anything a framework prints goes to stderr (a log file).
"""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

REPO_ROOT = Path(__file__).resolve().parents[2]


class ArmFailed(RuntimeError):
    """The worker answered with an error (the arm cannot run), or died (then `died` is set)."""

    def __init__(self, message: str, died: bool = False) -> None:
        super().__init__(message)
        self.died = died


class WorkerProcess:
    """Parent side: a started worker with `env` added to this process's environment."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = Path(log_dir) / f"worker-{_file_name(name)}.log"
        self._log = open(self.log_path, "w")
        full_env = {**os.environ, **env}
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), full_env.get("PYTHONPATH")]))
        full_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        self.env = env
        self.process = subprocess.Popen([sys.executable, "-m", "vswin.bench.worker"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self._log, env=full_env, text=True)  # fmt: skip

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one message and wait for its answer; ArmFailed on an error answer or a dead worker."""
        if not self.alive:
            raise ArmFailed(self._death(), died=True)
        try:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            self.process.wait()
            raise ArmFailed(self._death(), died=True)
        reply = json.loads(line)
        if "error" in reply:
            raise ArmFailed(reply["error"])
        return reply

    def close(self) -> None:
        if self.alive:
            try:
                self.request({"op": "exit"})
            except ArmFailed:
                pass
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def _death(self) -> str:
        self._log.flush()
        tail = self.log_path.read_text(errors="replace")[-2000:].strip()
        return f"worker {self.name!r} exited with code {self.process.returncode}; log tail:\n{tail}"


def _file_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


# -- child side -------------------------------------------------------------------------------------------


def _usage() -> tuple[float, float, int]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime, usage.ru_minflt


class _Worker:
    def __init__(self) -> None:
        self.forwards: dict[str, Any] = {}

    def prepare(self, arm: str, kind: str, options: dict, case: dict, write_weights: bool, warmup: int) -> dict:
        from vswin.bench import backends, machine
        from vswin.bench.case import Case

        start = time.perf_counter()
        forward = backends.prepare(kind, Case.from_dict(case), options, write_weights)
        built = time.perf_counter()
        features = forward()
        first = time.perf_counter()
        for _ in range(max(0, warmup - 1)):
            forward()
        self.forwards[arm] = forward
        return {"setup_s": built - start, "first_call_s": first - built, "features": features.tolist(),
                "settings": machine.settings(), "pid": os.getpid()}  # fmt: skip

    def time(self, arm: str, calls: int) -> dict:
        forward = self.forwards[arm]
        times = []
        user, system, faults = _usage()
        for _ in range(calls):
            start = time.perf_counter()
            forward()
            times.append(time.perf_counter() - start)
        user2, system2, faults2 = _usage()
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
        return {"times_s": times, "user_s": user2 - user, "sys_s": system2 - system, "minor_faults": faults2 - faults,
                "peak_rss_mib": round(peak_mib)}  # fmt: skip

    def release(self, arm: str) -> dict:
        self.forwards.pop(arm, None)
        gc.collect()
        if "torch" in sys.modules and sys.modules["torch"].cuda.is_available():
            sys.modules["torch"].cuda.empty_cache()
        return {}


_OPS = ("prepare", "time", "release")


def serve(commands: TextIO, answers: TextIO) -> None:
    """Answer commands until `exit` or end of input; an exception becomes an error answer."""
    worker = _Worker()
    for line in commands:
        message = json.loads(line)
        op = message.pop("op")
        try:
            if op == "exit":
                answers.write("{}\n")
                answers.flush()
                return
            if op not in _OPS:
                raise ValueError(f"unknown operation {op!r}: expected one of {_OPS} or 'exit'")
            reply = getattr(worker, op)(**message)
        except Exception as err:  # the arm failed; the worker keeps serving
            reply = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-3000:]}
            print(reply["traceback"], file=sys.stderr, flush=True)
        answers.write(json.dumps(reply) + "\n")
        answers.flush()


def main() -> int:
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # framework chatter must not corrupt the protocol
    serve(sys.stdin, answers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
