"""A rollout under load: canary, stable, rollback on a running `vswin serve`, with zero failed requests.

The server runs with Dockerfile.serving's flags (batching, warmup, XLA, monitoring, health; local ports
and files), polls its models.config every second, and the label moves go through `vswin config ... --server`.
Two client threads call Predict by label `stable` in a closed loop; each response's model_spec.version
is checked against the phase it was sent and answered in.
"""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from dockerfile_parse import DockerfileParser

from tests.serving_config.test_dockerfile import DOCKERFILE, entrypoint_flags
from vswin.cli import main

REPO = Path(__file__).resolve().parents[2]
MODEL = "vswin_nano"
pytestmark = pytest.mark.timeout(420)


@dataclass(frozen=True)
class Call:
    sent: float
    answered: float
    version: int | None
    error: str | None


def server_flags(grpc_port: int, rest_port: int, config: Path) -> list[str]:
    """Dockerfile.serving's tensorflow_model_server flags with this machine's ports and files.

    The config is polled every second (30 s in the image) so polling races the label moves.
    `--xla_gpu_compilation_enabled` also allows XLA on the CPU, as in tensorflow_model_server.
    """
    local = {
        "port": str(grpc_port),
        "rest_api_port": str(rest_port),
        "model_config_file": str(config),
        "model_config_file_poll_wait_seconds": "1",
        "batching_parameters_file": str(REPO / "serving_config" / "batching_parameters.txt"),
        "monitoring_config_file": str(REPO / "serving_config" / "monitoring.config"),
    }
    flags = []
    for flag in entrypoint_flags(DockerfileParser(fileobj=io.BytesIO(DOCKERFILE.read_bytes()))):
        name, _, value = flag.lstrip("-").partition("=")
        flags.append(f"--{name}={local.get(name, value)}")
    return [*flags, "--host=127.0.0.1"]


def stop_process(process: subprocess.Popen, grace_s: float = 30.0) -> None:
    """SIGTERM (the server drains and exits), SIGKILL if it is still there after `grace_s`."""
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ClosedLoop:
    """`threads` callers, each sending its next request when the last is answered, until stopped or bounded."""

    # max_calls only bounds a runaway loop: the nano export answers about 250 requests/s on 2 cores.
    def __init__(self, target: str, frames: np.ndarray, threads: int = 2, max_calls: int = 50_000):
        from vswin.client import VideoSwinClient
        from vswin.client.channel import NO_RETRY

        # No retries: a request that fails counts as failed, instead of being hidden by a retry.
        self.client = VideoSwinClient(target, model=MODEL, label="stable", timeout=30.0, retry=NO_RETRY)
        self.frames = frames
        self.max_calls = max_calls
        self.calls: list[Call] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        predict = self.client.predict_call({"frames": self.frames})
        while not self.stop.is_set() and len(self.calls) < self.max_calls:
            sent = time.monotonic()
            try:
                # The client's Predict path, keeping the raw response for its model_spec.
                response = self.client.rpc.call(predict, self.client.attempts(predict))
                call = Call(sent, time.monotonic(), response.model_spec.version.value, None)
            except Exception as err:  # every failure is recorded and fails the test
                call = Call(sent, time.monotonic(), None, repr(err))
            with self.lock:
                self.calls.append(call)

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def wait_for_calls_after(self, moment: float, count: int = 8, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while sum(call.sent > moment for call in self.calls) < count:
            assert time.monotonic() < deadline, f"fewer than {count} requests in {timeout} s"
            assert any(thread.is_alive() for thread in self.threads), "load stopped"
            time.sleep(0.05)

    def finish(self) -> list[Call]:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)
        self.client.close()
        return list(self.calls)


@pytest.fixture()
def served(nano_export, tmp_path, subprocess_env, free_port):
    """A `vswin serve` process over BASE/vswin_nano/1 with labels stable=canary=1: (target, config, base).

    The nano export: what is under test is the label moves and the version loads, not the features, and its
    XLA warmup and requests cost a fraction of the micro's, so the server is not starved by the load."""
    shutil.copytree(nano_export / "1", tmp_path / "models" / MODEL / "1")
    config = tmp_path / "models.config"
    assert main(["config", "generate", str(tmp_path / "models"), "--policy", "specific", "--label", "stable=1",
                 "--label", "canary=1", "--out", str(config)]) == 0
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "vswin", "serve", *server_flags(free_port, unused_port(), config)],
                              env=subprocess_env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    target = f"127.0.0.1:{free_port}"
    try:
        wait_available(server, target, 1, tmp_path / "server.log")
        yield target, config, tmp_path / "models" / MODEL
    finally:
        stop_process(server)
        log.close()


def wait_available(server: subprocess.Popen, target: str, version: int, log: Path, timeout: float = 600.0) -> None:
    from vswin.serving.rollout import ServerControl

    control = ServerControl(target, timeout=5.0)
    deadline = time.monotonic() + timeout
    try:
        while True:
            assert server.poll() is None, f"vswin serve exited ({server.returncode}):\n{log.read_text()[-4000:]}"
            try:
                if control.version_state(MODEL, version) == "AVAILABLE":
                    return
            except Exception:  # not listening yet
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"version {version} not AVAILABLE in {timeout} s:\n{log.read_text()[-4000:]}")
            time.sleep(0.5)
    finally:
        control.close()


def test_canary_stable_rollback_under_load_without_failed_requests(served, nano_export):
    target, config, base = served
    frames = np.random.default_rng(0).integers(0, 256, size=(1, 2, 32, 32, 3), dtype=np.uint8)
    load = ClosedLoop(target, frames)
    load.start()
    phases = []  # (label move started, move finished, stable version from then on)
    try:
        load.wait_for_calls_after(time.monotonic())
        shutil.copytree(nano_export / "1", base / ".staging-2")  # as `vswin export` does: whole or nothing
        (base / ".staging-2").rename(base / "2")
        for argv, stable in (
            (["promote", MODEL, "--label", "canary", "--version", "2"], 1),
            (["promote", MODEL, "--label", "stable", "--from", "canary"], 2),
            (["rollback", MODEL], 1),
        ):
            started = time.monotonic()
            assert main(["config", *argv, "--config", str(config), "--server", target, "--wait", "600"]) == 0
            finished = time.monotonic()
            phases.append((started, finished, stable))
            load.wait_for_calls_after(finished)
    finally:
        calls = load.finish()

    failed = [call.error for call in calls if call.error]
    assert not failed, f"{len(failed)} of {len(calls)} requests failed, e.g. {failed[:3]}"
    wrong = [(call, expected_versions(call, phases)) for call in calls
             if call.version not in expected_versions(call, phases)]
    assert not wrong, f"{len(wrong)} responses from an unexpected version, e.g. {wrong[:3]}"
    settled = [expected_versions(call, phases) for call in calls]
    # Every phase (stable 1, 1 while canary is 2, 2, 1 again) had answers that could only come from one version.
    for index, (_, _, stable) in enumerate([(0, 0, 1), *phases]):
        in_phase = [c for c, e in zip(calls, settled) if len(e) == 1 and phase_of(c, phases) == index]
        assert len(in_phase) >= 3 and {c.version for c in in_phase} == {stable}


def expected_versions(call: Call, phases, initial: int = 1) -> set[int]:
    """The versions `stable` may have answered `call` with: one, or two if it overlapped a label move."""
    current = initial
    for started, finished, stable in phases:
        if call.answered < started:
            return {current}
        if call.sent <= finished:
            return {current, stable}
        current = stable
    return {current}


def phase_of(call: Call, phases) -> int:
    """0 before the first move finished, k after the k-th."""
    return sum(call.sent > finished for _, finished, _ in phases)
