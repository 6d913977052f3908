"""Dynamic batching: merging, padding, timeouts, queue limits, errors and shutdown of BatchScheduler."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from vswin.serving.batching import (
    BatchingOptions,
    BatchScheduler,
    BatchTooLargeError,
    QueueFullError,
    read_batching_parameters,
)
from vswin.serving.metrics import ServerMetrics

KEY = ("micro", 1, "serving_default", ())
WEIGHTS = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)


class Recorder:
    """A numpy signature: features = frames @ W, row by row; records the batch sizes it was called with."""

    def __init__(self, block: threading.Event | None = None) -> None:
        self.sizes: list[int] = []
        self.block = block
        self.started = threading.Event()

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.sizes.append(len(inputs["frames"]))
        self.started.set()
        if self.block is not None:
            self.block.wait(10)
        frames = inputs["frames"]
        return {"features": frames @ WEIGHTS, "first": frames[:, 0].copy()}


def requests(n: int, rows: int = 1) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    return [{"frames": rng.standard_normal((rows, 6)).astype(np.float32)} for _ in range(n)]


def submit_all(scheduler: BatchScheduler, inputs: list[dict[str, np.ndarray]], run, timeout: float = 10):
    with ThreadPoolExecutor(len(inputs)) as pool:
        futures = [pool.submit(scheduler.submit, KEY, x, run, timeout) for x in inputs]
        return [f.result() for f in futures]


def wait_for_depth(scheduler: BatchScheduler, depth: int) -> None:
    deadline = time.monotonic() + 5
    while scheduler.queue_depth() < depth and time.monotonic() < deadline:
        time.sleep(0.01)
    assert scheduler.queue_depth() == depth


def test_concurrent_requests_merge_into_one_call_with_results_equal_to_running_alone() -> None:
    run = Recorder()
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=8, batch_timeout_micros=2_000_000, num_batch_threads=1))
    inputs = requests(8)
    try:
        outputs = submit_all(scheduler, inputs, run)
    finally:
        scheduler.close()
    assert run.sizes == [8]  # full batch closes at once, well before the 2 s timeout
    for x, out in zip(inputs, outputs):
        alone = Recorder()(x)
        assert out.keys() == alone.keys()
        for name in alone:
            np.testing.assert_allclose(out[name], alone[name], atol=1e-6)


def test_requests_are_padded_to_the_next_allowed_size_and_the_padding_is_not_returned() -> None:
    run = Recorder()
    plug = Recorder(threading.Event())
    metrics = ServerMetrics()
    options = BatchingOptions(
        max_batch_size=8, batch_timeout_micros=0, num_batch_threads=1, allowed_batch_sizes=(2, 4, 8)
    )
    scheduler = BatchScheduler(options, metrics)
    inputs = requests(3, rows=1) + requests(1, rows=2)  # 5 rows -> padded to 8
    try:
        with ThreadPoolExecutor(5) as pool:
            plugged = pool.submit(scheduler.submit, ("plug", 1, "serving_default", ()), requests(1)[0], plug, 10)
            assert plug.started.wait(5)  # the only worker is busy: the requests below gather in one batch
            futures = [pool.submit(scheduler.submit, KEY, x, run, 10) for x in inputs]
            wait_for_depth(scheduler, 4)
            labels = {"model_name": "micro", "signature": "serving_default"}
            depth = metrics.registry.get_sample_value(":tensorflow:serving:batching_session:queue_depth", labels)
            assert depth == 4
            plug.block.set()
            plugged.result(10)
            outputs = [f.result(10) for f in futures]
    finally:
        plug.block.set()
        scheduler.close()
    assert run.sizes == [8]
    for x, out in zip(inputs, outputs):
        assert out["features"].shape == (len(x["frames"]), 4)
        np.testing.assert_allclose(out["features"], x["frames"] @ WEIGHTS, atol=1e-5)
    sample = metrics.registry.get_sample_value
    assert sample(":tensorflow:serving:batching_session:input_batch_size_sum", labels) == 5
    assert sample(":tensorflow:serving:batching_session:processed_batch_size_sum", labels) == 8
    assert sample(":tensorflow:serving:batching_session:padding_size_sum", labels) == 3
    assert sample(":tensorflow:serving:batching_session:queue_depth", labels) == 0


def test_requests_with_different_input_shapes_run_in_separate_batches() -> None:
    calls: list[tuple[int, ...]] = []

    def run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        calls.append(inputs["frames"].shape)
        return {"sum": inputs["frames"].reshape(len(inputs["frames"]), -1).sum(axis=1)}

    plug = Recorder(threading.Event())
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=8, num_batch_threads=1))
    shapes = [(1, 6), (2, 6), (1, 3)]
    try:
        with ThreadPoolExecutor(4) as pool:
            plugged = pool.submit(scheduler.submit, ("plug", 1, "serving_default", ()), requests(1)[0], plug, 10)
            assert plug.started.wait(5)
            futures = [pool.submit(scheduler.submit, KEY, {"frames": np.ones(shape)}, run, 10) for shape in shapes]
            wait_for_depth(scheduler, 3)
            plug.block.set()
            plugged.result(10)
            results = [f.result(10)["sum"] for f in futures]
    finally:
        plug.block.set()
        scheduler.close()
    assert sorted(calls) == [(1, 3), (3, 6)]
    assert [r.tolist() for r in results] == [[6.0], [6.0, 6.0], [3.0]]


def test_a_partial_batch_closes_after_batch_timeout_micros() -> None:
    run = Recorder()
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=64, batch_timeout_micros=100_000, num_batch_threads=1))
    try:
        start = time.monotonic()
        outputs = submit_all(scheduler, requests(3), run)
        elapsed = time.monotonic() - start
    finally:
        scheduler.close()
    assert sum(run.sizes) == 3 and len(outputs) == 3
    assert 0.09 <= elapsed < 2.0


def test_a_request_larger_than_max_batch_size_is_rejected() -> None:
    run = Recorder()
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=4, num_batch_threads=1))
    try:
        with pytest.raises(BatchTooLargeError, match="Task size 5 is larger than maximum input batch size 4"):
            scheduler.submit(KEY, requests(1, rows=5)[0], run)
        assert run.sizes == []
        assert scheduler.submit(KEY, requests(1, rows=4)[0], run)["features"].shape == (4, 4)
    finally:
        scheduler.close()


def test_inputs_disagreeing_on_the_batch_dimension_are_rejected() -> None:
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=4, num_batch_threads=1))
    try:
        with pytest.raises(ValueError, match="disagree on the batch dimension"):
            scheduler.submit(KEY, {"a": np.zeros((2, 3)), "b": np.zeros((1, 3))}, Recorder())
    finally:
        scheduler.close()


def test_queue_full_is_raised_while_the_worker_is_blocked() -> None:
    block = threading.Event()
    run = Recorder(block)
    options = BatchingOptions(max_batch_size=2, batch_timeout_micros=0, num_batch_threads=1, max_enqueued_batches=1)
    scheduler = BatchScheduler(options)
    pool = ThreadPoolExecutor(3)
    try:
        running = pool.submit(scheduler.submit, KEY, requests(1, rows=2)[0], run, 10)
        assert run.started.wait(5)  # the only worker is now stuck in run
        queued = pool.submit(scheduler.submit, KEY, requests(1, rows=2)[0], run, 10)
        wait_for_depth(scheduler, 1)
        assert scheduler.queue_depth(KEY) == 1 and scheduler.queue_depth(("other", 1, "serving_default", ())) == 0
        with pytest.raises(QueueFullError, match="full"):
            scheduler.submit(KEY, requests(1)[0], run, 10)
        other_key = pool.submit(scheduler.submit, ("other", 1, "serving_default", ()), requests(1)[0], run, 10)
        block.set()
        assert running.result(10)["features"].shape == (2, 4)
        assert queued.result(10)["features"].shape == (2, 4)
        assert other_key.result(10)["features"].shape == (1, 4)  # other keys have their own queue
    finally:
        block.set()
        pool.shutdown()
        scheduler.close()


def test_an_error_raised_by_run_reaches_every_request_of_the_batch_and_the_scheduler_keeps_serving() -> None:
    calls = []

    def failing(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        calls.append(len(inputs["frames"]))
        raise RuntimeError("signature exploded")

    scheduler = BatchScheduler(BatchingOptions(max_batch_size=4, batch_timeout_micros=2_000_000, num_batch_threads=1))
    try:
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(scheduler.submit, KEY, x, failing, 10) for x in requests(4)]
            for future in futures:
                with pytest.raises(RuntimeError, match="signature exploded"):
                    future.result()
        assert calls == [4]
        assert scheduler.submit(KEY, requests(1, rows=4)[0], Recorder(), 10)["features"].shape == (4, 4)
    finally:
        scheduler.close()


def test_run_returning_the_wrong_number_of_rows_is_an_error_naming_the_output() -> None:
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=4, num_batch_threads=1))
    try:
        with pytest.raises(ValueError, match="output 'features' has shape"):
            scheduler.submit(KEY, requests(1, rows=2)[0], lambda x: {"features": np.zeros((1, 4))}, 10)
    finally:
        scheduler.close()


def test_timeout_raises_and_withdraws_the_waiting_request() -> None:
    block = threading.Event()
    run = Recorder(block)
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=1, num_batch_threads=1, max_enqueued_batches=4))
    pool = ThreadPoolExecutor(1)
    try:
        running = pool.submit(scheduler.submit, KEY, requests(1)[0], run, 10)
        assert run.started.wait(5)
        with pytest.raises(TimeoutError, match="batch queue"):
            scheduler.submit(KEY, requests(1)[0], run, timeout=0.1)
        assert scheduler.queue_depth(KEY) == 0
        block.set()
        running.result(10)
        assert run.sizes == [1]  # the timed-out request never ran
    finally:
        block.set()
        pool.shutdown()
        scheduler.close()


def test_timeout_raises_even_when_the_batch_is_already_running() -> None:
    block = threading.Event()
    run = Recorder(block)
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=1, num_batch_threads=1))
    try:
        start = time.monotonic()
        with pytest.raises(TimeoutError, match="still running"):
            scheduler.submit(KEY, requests(1)[0], run, timeout=0.2)
        assert time.monotonic() - start < 5 and run.sizes == [1]
    finally:
        block.set()
        scheduler.close()


def test_close_drains_queued_requests_then_refuses_new_ones() -> None:
    run = Recorder()
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=64, batch_timeout_micros=30_000_000, num_batch_threads=2))
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(scheduler.submit, KEY, x, run, 20) for x in requests(3)]
        wait_for_depth(scheduler, 3)
        start = time.monotonic()
        scheduler.close()  # would otherwise wait 30 s for the batch to fill
        assert time.monotonic() - start < 5
        assert [f.result(5)["features"].shape for f in futures] == [(1, 4)] * 3
    assert run.sizes == [3]
    with pytest.raises(RuntimeError, match="closed"):
        scheduler.submit(KEY, requests(1)[0], run)


def test_close_without_drain_fails_the_queued_requests() -> None:
    run = Recorder()
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=64, batch_timeout_micros=30_000_000, num_batch_threads=1))
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(scheduler.submit, KEY, requests(1)[0], run, 20)
        wait_for_depth(scheduler, 1)
        scheduler.close(drain=False)
        with pytest.raises(RuntimeError, match="closed before this request ran"):
            future.result(5)
    assert run.sizes == []


def test_a_tf_function_batched_equals_the_function_run_alone() -> None:
    tf = pytest.importorskip("tensorflow")
    weights = tf.constant(WEIGHTS)

    @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32)])
    def signature(frames):
        return {"features": tf.nn.softmax(tf.matmul(frames, weights))}

    def run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in signature(tf.constant(inputs["frames"])).items()}

    scheduler = BatchScheduler(
        BatchingOptions(max_batch_size=4, batch_timeout_micros=2_000_000, num_batch_threads=1, allowed_batch_sizes=(4,))
    )
    inputs = requests(3)
    try:
        outputs = submit_all(scheduler, inputs[:2] + [{"frames": np.concatenate([inputs[2]["frames"]] * 2)}], run)
    finally:
        scheduler.close()
    for x, out in zip(inputs[:2], outputs):
        np.testing.assert_allclose(out["features"], run(x)["features"], atol=1e-6)
    assert outputs[2]["features"].shape == (2, 4)


def test_options_are_validated_as_tf_serving_does() -> None:
    with pytest.raises(ValueError, match=r"last entry of allowed_batch_sizes \(4\) must equal max_batch_size \(8\)"):
        BatchingOptions(max_batch_size=8, allowed_batch_sizes=(2, 4))
    with pytest.raises(ValueError, match="strictly increasing"):
        BatchingOptions(max_batch_size=8, allowed_batch_sizes=(4, 2, 8))
    with pytest.raises(ValueError, match="num_batch_threads must be positive"):
        BatchingOptions(num_batch_threads=0)
    assert BatchingOptions(max_batch_size=8, allowed_batch_sizes=(2, 8)).padded_size(3) == 8
    assert BatchingOptions(max_batch_size=8).padded_size(3) == 3


def test_batching_parameters_file_parses_with_tf_serving_defaults(tmp_path: Path) -> None:
    path = tmp_path / "batching_parameters.txt"
    path.write_text(
        "max_batch_size { value: 8 }\nbatch_timeout_micros { value: 5000 }\n"
        "num_batch_threads { value: 2 }\nallowed_batch_sizes: 2\nallowed_batch_sizes: 8\n"
        'thread_pool_name { value: "batch_threads" }\n'
    )
    options = read_batching_parameters(path)
    assert options == BatchingOptions(
        max_batch_size=8, batch_timeout_micros=5000, num_batch_threads=2, max_enqueued_batches=10,
        allowed_batch_sizes=(2, 8),
    )  # fmt: skip
    path.write_text("")
    assert read_batching_parameters(path).max_batch_size == 1000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pad_variable_length_inputs: true\n", "pad_variable_length_inputs is not supported"),
        ("max_batch_size: 8\n", "not a valid BatchingParameters"),
        ("max_batch_sise { value: 8 }\n", "max_batch_sise"),
        ("max_batch_size { value: 8 }\nallowed_batch_sizes: 4\n", "must equal max_batch_size"),
        ("enable_large_batch_splitting { value: true }\n", "enable_large_batch_splitting is not supported"),
    ],
)
def test_bad_batching_parameters_files_are_errors_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "batching_parameters.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        read_batching_parameters(path)
    assert str(path) in str(info.value)


def test_a_missing_batching_parameters_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read batching parameters file .*nope.txt"):
        read_batching_parameters(tmp_path / "nope.txt")


def test_the_repository_batching_parameters_parse() -> None:
    path = Path(__file__).resolve().parents[2] / "serving_config" / "batching_parameters.txt"
    options = read_batching_parameters(path)
    assert options.allowed_batch_sizes[-1] == options.max_batch_size
