"""Start `vswin serve` (or `tensorflow_model_server`) as a child process for a benchmark, and stop it after.

The command line is kept so result files can record the server flags the
figures were measured with.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

# TF Serving's batching parameters (session_bundle_config.proto BatchingParameters), text format.
BATCHING_TEMPLATE = """max_batch_size {{ value: {max_batch_size} }}
batch_timeout_micros {{ value: {batch_timeout_micros} }}
num_batch_threads {{ value: {num_batch_threads} }}
max_enqueued_batches {{ value: {max_enqueued_batches} }}
"""


def write_batching_parameters(
    path: Path, max_batch_size: int = 8, batch_timeout_micros: int = 20_000, num_batch_threads: int = 1,
    max_enqueued_batches: int = 100, allowed_batch_sizes: Sequence[int] = (),
) -> Path:  # fmt: skip
    """A batching_parameters.txt for `--enable_batching --batching_parameters_file`.

    Pass the export's warmed-up batch sizes as `allowed_batch_sizes` (the last equal to
    `max_batch_size`) when serving an XLA signature: merged batches are then padded to a size
    already compiled instead of compiling a new program for every batch size the queue forms.
    """
    text = BATCHING_TEMPLATE.format(
        max_batch_size=max_batch_size, batch_timeout_micros=batch_timeout_micros,
        num_batch_threads=num_batch_threads, max_enqueued_batches=max_enqueued_batches,
    )  # fmt: skip
    path.write_text(text + "".join(f"allowed_batch_sizes: {size}\n" for size in allowed_batch_sizes))
    return path


class LocalServer:
    """A server on 127.0.0.1:`port` serving one model from `base_path` (BASE/NAME), ready on __enter__.

    `binary` None runs `python -m vswin serve`; "tensorflow_model_server" runs TF Serving's own binary
    with the same flags.
    """

    def __init__(
        self,
        port: int,
        model_name: str,
        base_path: str | Path,
        flags: list[str] = (),
        binary: str | None = None,
        env: dict[str, str] | None = None,
        ready_timeout_s: float = 300.0,
    ) -> None:
        self.port = port
        self.model_name = model_name
        self.target = f"127.0.0.1:{port}"
        prefix = [binary] if binary else [sys.executable, "-m", "vswin", "serve"]
        self.command = [
            *prefix, f"--port={port}", f"--model_name={model_name}", f"--model_base_path={Path(base_path).resolve()}",
            *flags,
        ]  # fmt: skip
        self.env = env
        self.ready_timeout_s = ready_timeout_s
        self._process: subprocess.Popen | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="vswin-serve-", suffix=".log", delete=False)

    @property
    def flags(self) -> str:
        """The server's command line, as recorded in result files."""
        return " ".join(self.command[self.command.index(f"--port={self.port}") :])

    def __enter__(self) -> LocalServer:
        if self.command[0] != sys.executable and shutil.which(self.command[0]) is None:
            raise FileNotFoundError(f"server binary {self.command[0]!r} is not on PATH")
        log.info("starting %s", " ".join(self.command))
        self._process = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT, env=self.env)
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_ready(self) -> None:
        """Poll GetModelStatus until a version is AVAILABLE; fail with the server's log if it exits."""
        from vswin.client import ClientError, VideoSwinClient
        from vswin.client.channel import NO_RETRY

        deadline = time.monotonic() + self.ready_timeout_s
        # This loop is the retry: a client retrying each poll only logs a warning per refused connection.
        with VideoSwinClient(self.target, self.model_name, timeout=5.0, retry=NO_RETRY) as client:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise RuntimeError(f"server exited with {self._process.returncode}:\n{self.log_tail()}")
                try:
                    if any(v.state == "AVAILABLE" for v in client.status()):
                        return
                except ClientError:
                    pass
                time.sleep(0.5)
        raise TimeoutError(f"{self.target} not ready after {self.ready_timeout_s}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        return Path(self._log.name).read_text(errors="replace")[-chars:]

    def __exit__(self, *exc: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()
        os.unlink(self._log.name)
