"""Dynamic batching with TF Serving's parameters: concurrent requests merged into one signature call.

Mirrors TF Serving's BasicBatchScheduler/SharedBatchScheduler: one queue per key (model, version,
signature, output filter); a batch closes when it holds max_batch_size rows or batch_timeout_micros
after its first request; num_batch_threads workers are shared by all queues; a queue holding
max_enqueued_batches batches refuses new ones; a batch is padded to the next allowed_batch_sizes entry.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from google.protobuf import text_format

from vswin import contract
from vswin.serving.config_protos import BatchingParameters

if TYPE_CHECKING:
    from vswin.serving.metrics import ServerMetrics

RunFn = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]

# TF Serving's own defaults (batching_session.cc / shared_batch_scheduler.h) for unset fields.
DEFAULT_MAX_BATCH_SIZE = 1000
DEFAULT_BATCH_TIMEOUT_MICROS = 0
DEFAULT_MAX_ENQUEUED_BATCHES = 10


class QueueFullError(Exception):
    """The key's queue already holds max_enqueued_batches batches (TF Serving answers UNAVAILABLE)."""


class BatchTooLargeError(ValueError):
    """A single request has more rows than max_batch_size (INVALID_ARGUMENT with TF Serving's wording)."""


def _default_threads() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True)
class BatchingOptions:
    """TF Serving's BatchingParameters that this scheduler implements, validated as TF Serving does."""

    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    batch_timeout_micros: int = DEFAULT_BATCH_TIMEOUT_MICROS
    num_batch_threads: int = field(default_factory=_default_threads)
    max_enqueued_batches: int = DEFAULT_MAX_ENQUEUED_BATCHES
    allowed_batch_sizes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "num_batch_threads", "max_enqueued_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.batch_timeout_micros < 0:
            raise ValueError(f"batch_timeout_micros must be >= 0, got {self.batch_timeout_micros}")
        sizes = tuple(int(s) for s in self.allowed_batch_sizes)
        object.__setattr__(self, "allowed_batch_sizes", sizes)
        if sizes:
            if any(s < 1 for s in sizes) or any(b <= a for a, b in zip(sizes, sizes[1:])):
                raise ValueError(f"allowed_batch_sizes must be positive and strictly increasing, got {list(sizes)}")
            if sizes[-1] != self.max_batch_size:
                raise ValueError(
                    f"the last entry of allowed_batch_sizes ({sizes[-1]}) must equal max_batch_size "
                    f"({self.max_batch_size})"
                )

    def padded_size(self, size: int) -> int:
        """The smallest allowed batch size holding `size` rows (`size` itself without allowed sizes)."""
        return next((s for s in self.allowed_batch_sizes if s >= size), size)


def read_batching_parameters(path: str | Path) -> BatchingOptions:
    """Parse TF Serving's batching_parameters.txt (BatchingParameters text proto) into BatchingOptions."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ValueError(f"cannot read batching parameters file {path}: {err}") from err
    params = BatchingParameters()
    try:
        text_format.Parse(text, params)
    except text_format.ParseError as err:
        message = f"batching parameters file {path} is not a valid BatchingParameters text proto: {err}"
        raise ValueError(message) from err
    if params.pad_variable_length_inputs:
        raise ValueError(
            f"{path}: pad_variable_length_inputs is not supported by vswin serve; every input of a "
            "batch must have the same shape apart from the batch dimension"
        )
    if params.HasField("enable_large_batch_splitting") and params.enable_large_batch_splitting.value:
        raise ValueError(f"{path}: enable_large_batch_splitting is not supported by vswin serve")
    if params.HasField("max_execution_batch_size"):
        raise ValueError(f"{path}: max_execution_batch_size (large batch splitting) is not supported by vswin serve")
    values = {
        name: getattr(params, name).value
        for name in ("max_batch_size", "batch_timeout_micros", "num_batch_threads", "max_enqueued_batches")
        if params.HasField(name)
    }
    try:
        return BatchingOptions(**values, allowed_batch_sizes=tuple(params.allowed_batch_sizes))
    except ValueError as err:
        raise ValueError(f"batching parameters file {path}: {err}") from err


def _rows(inputs: dict[str, np.ndarray]) -> int:
    """The common size of axis 0 of every input; ValueError naming the input that disagrees."""
    if not inputs:
        raise ValueError("a batched request needs at least one input")
    sizes = {}
    for name, value in inputs.items():
        if np.ndim(value) == 0:
            raise ValueError(f"input {name!r} is a scalar; batching needs a batch dimension")
        sizes[name] = np.shape(value)[0]
    if len(set(sizes.values())) != 1:
        raise ValueError(f"inputs disagree on the batch dimension: {sizes}")
    rows = next(iter(sizes.values()))
    if rows < 1:
        raise ValueError("a batched request needs at least one row")
    return rows


def _spec(inputs: dict[str, np.ndarray]) -> tuple:
    """What must match for two requests to share a batch: names, dtypes and non-batch dimensions."""
    return tuple(sorted((name, np.asarray(v).dtype.str, np.shape(v)[1:]) for name, v in inputs.items()))


class _Task:
    """One submitted request: its inputs and, once run, its outputs or error."""

    def __init__(self, inputs: dict[str, np.ndarray], rows: int) -> None:
        self.inputs = inputs
        self.rows = rows
        self.done = threading.Event()
        self.outputs: dict[str, np.ndarray] | None = None
        self.error: BaseException | None = None


class _Batch:
    """Requests of one key and input spec that will run as one call."""

    def __init__(self, spec: tuple, run: RunFn, deadline: float) -> None:
        self.spec = spec
        self.run = run
        self.deadline = deadline
        self.tasks: list[_Task] = []
        self.rows = 0


class BatchScheduler:
    """Merges concurrent `submit` calls per key into batched `run` calls on shared worker threads."""

    def __init__(self, options: BatchingOptions, metrics: ServerMetrics | None = None) -> None:
        self.options = options
        self.metrics = metrics
        self._cond = threading.Condition()
        self._queues: dict[Hashable, deque[_Batch]] = {}
        self._closing = False
        self._workers = [
            threading.Thread(target=self._work, name=f"batch-worker-{i}", daemon=True)
            for i in range(options.num_batch_threads)
        ]
        for worker in self._workers:
            worker.start()

    def submit(
        self, key: Hashable, inputs: dict[str, np.ndarray], run: RunFn, timeout: float | None = None
    ) -> dict[str, np.ndarray]:
        """Run `inputs` as part of a batch of requests with the same key; blocks until its rows are back.

        Requests with the same key are merged along axis 0 (up to max_batch_size rows, waiting at
        most batch_timeout_micros after the batch's first request), padded to the next allowed batch
        size by repeating the last row, run once by a worker with the first request's `run`, and
        split back. An error raised by `run` is raised to every request of that batch. Raises
        BatchTooLargeError for more rows than max_batch_size, QueueFullError when the key's queue
        holds max_enqueued_batches batches, TimeoutError when not done within `timeout` seconds.
        """
        inputs = {name: np.asarray(value) for name, value in inputs.items()}
        rows = _rows(inputs)
        if rows > self.options.max_batch_size:
            raise BatchTooLargeError(contract.batch_too_large(rows, self.options.max_batch_size))
        task = _Task(inputs, rows)
        self._enqueue(key, task, _spec(inputs), run)
        if not task.done.wait(timeout):
            if self._cancel(key, task):
                raise TimeoutError(f"request not run within {timeout} s (waiting in the batch queue)")
            if not task.done.is_set():  # its batch is running; the result is dropped when it comes
                raise TimeoutError(f"request not done within {timeout} s (its batch is still running)")
        if task.error is not None:
            raise task.error
        assert task.outputs is not None
        return task.outputs

    def queue_depth(self, key: Hashable | None = None) -> int:
        """Requests waiting in batches not yet started, for `key` or for all keys."""
        with self._cond:
            queues = [self._queues.get(key, ())] if key is not None else list(self._queues.values())
            return sum(len(batch.tasks) for queue in queues for batch in queue)

    def close(self, drain: bool = True) -> None:
        """Stop accepting requests; run what is queued (drain) or fail it, then stop the workers."""
        with self._cond:
            self._closing = True
            if not drain:
                for key, queue in self._queues.items():
                    for batch in queue:
                        for task in batch.tasks:
                            task.error = RuntimeError("the batch scheduler was closed before this request ran")
                            task.done.set()
                    queue.clear()
                    self._report_depth(key)
            self._cond.notify_all()
        for worker in self._workers:
            worker.join()

    def _enqueue(self, key: Hashable, task: _Task, spec: tuple, run: RunFn) -> None:
        with self._cond:
            if self._closing:
                raise RuntimeError("the batch scheduler is closed")
            queue = self._queues.setdefault(key, deque())
            batch = next(
                (b for b in queue if b.spec == spec and b.rows + task.rows <= self.options.max_batch_size), None
            )
            if batch is None:
                if len(queue) >= self.options.max_enqueued_batches:
                    raise QueueFullError(
                        f"the batch queue for {key!r} is full ({self.options.max_enqueued_batches} batches enqueued)"
                    )
                deadline = time.monotonic() + self.options.batch_timeout_micros / 1e6
                batch = _Batch(spec, run, deadline)
                queue.append(batch)
            batch.tasks.append(task)
            batch.rows += task.rows
            self._report_depth(key)
            self._cond.notify_all()

    def _cancel(self, key: Hashable, task: _Task) -> bool:
        """Take a timed-out task out of its batch; False when its batch already started."""
        with self._cond:
            for batch in self._queues.get(key, ()):
                if task in batch.tasks:
                    batch.tasks.remove(task)
                    batch.rows -= task.rows
                    if not batch.tasks:
                        self._queues[key].remove(batch)
                        self._forget_if_empty(key)
                    self._report_depth(key)
                    return True
            return False

    def _next_batch(self) -> tuple[Hashable, _Batch] | None:
        """Block until a batch is ready (full, timed out, or draining); None when the worker should stop."""
        with self._cond:
            while True:
                now = time.monotonic()
                ready, wake = None, None
                for key, queue in self._queues.items():
                    if not queue:
                        continue
                    head = queue[0]
                    full = head.rows >= self.options.max_batch_size
                    if full or head.deadline <= now or self._closing:
                        if ready is None or head.deadline < ready[1].deadline:
                            ready = (key, head)
                    elif wake is None or head.deadline < wake:
                        wake = head.deadline
                if ready is not None:
                    self._queues[ready[0]].popleft()
                    self._forget_if_empty(ready[0])
                    self._report_depth(ready[0])
                    return ready
                if self._closing:
                    return None
                self._cond.wait(None if wake is None else wake - now)

    def _work(self) -> None:
        while (item := self._next_batch()) is not None:
            self._run_batch(*item)

    def _run_batch(self, key: Hashable, batch: _Batch) -> None:
        """Concatenate, pad, run and split one batch; errors go to every request of it."""
        tasks = batch.tasks
        padded = self.options.padded_size(batch.rows)
        try:
            merged = {}
            for name in tasks[0].inputs:
                parts = [task.inputs[name] for task in tasks]
                if padded > batch.rows:
                    parts.append(np.repeat(parts[-1][-1:], padded - batch.rows, axis=0))
                merged[name] = np.concatenate(parts, axis=0)
            outputs = batch.run(merged)
            for name, value in outputs.items():
                if np.ndim(value) == 0 or np.shape(value)[0] != padded:
                    raise ValueError(
                        f"output {name!r} has shape {np.shape(value)}; a batched signature must return "
                        f"{padded} rows (the batch size it was given) in axis 0"
                    )
            start = 0
            for task in tasks:
                task.outputs = {name: np.asarray(value)[start : start + task.rows] for name, value in outputs.items()}
                start += task.rows
        except Exception as err:  # noqa: BLE001 -- the caller of each request decides what the error means
            for task in tasks:
                task.error = err
        try:
            if self.metrics is not None:
                self.metrics.observe_batch(*_labels(key), batch.rows, padded)
        finally:  # never leave a caller waiting
            for task in tasks:
                task.done.set()

    def _forget_if_empty(self, key: Hashable) -> None:
        """Drop an empty queue so that keys seen once (e.g. output filters) do not accumulate."""
        if not self._queues.get(key, True):
            del self._queues[key]

    def _report_depth(self, key: Hashable) -> None:
        if self.metrics is not None:
            labels = _labels(key)
            depth = sum(
                len(batch.tasks) for other, queue in self._queues.items() if _labels(other) == labels for batch in queue
            )
            self.metrics.set_queue_depth(*labels, depth)


def _labels(key: Hashable) -> tuple[str, str]:
    """Metric labels (model, signature) of a key (model, version, signature, output filter) or a plain key."""
    if isinstance(key, tuple) and len(key) >= 3:
        return str(key[0]), str(key[2])
    return str(key), ""
