"""`vswin serve --enable_batching` and metrics wired into the server: merged runs, UNAVAILABLE when full, metrics."""

from __future__ import annotations

import threading
import time
import urllib.request
from concurrent import futures

import grpc
import numpy as np
import pytest
import tensorflow as tf
from prometheus_client.parser import text_string_to_metric_families

from tests.serving import savedmodels
from tests.serving.requests import Aborted, FakeContext, config_for, predict_request, wait_for
from vswin.serving.servable import Servable

pytestmark = pytest.mark.slow


@pytest.fixture()
def seen_batches(monkeypatch) -> list[int]:
    """Batch sizes the servables actually run (after merging and padding)."""
    sizes: list[int] = []
    original = Servable.run

    def recording_run(self, signature_name, inputs, *args, **kwargs):
        sizes.append(next(iter(inputs.values())).shape[0])
        return original(self, signature_name, inputs, *args, **kwargs)

    monkeypatch.setattr(Servable, "run", recording_run)
    return sizes


def write_batching(tmp_path, text: str):
    path = tmp_path / "batching_parameters.txt"
    path.write_text(text)
    return str(path)


def test_concurrent_requests_are_merged_into_one_run_with_identical_results(
    start_server, stubs, model_base, tmp_path, seen_batches, free_port
):
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text("prometheus_config { enable: true path: '/monitoring/prometheus/metrics' }")
    parameters = write_batching(tmp_path, "max_batch_size { value: 8 } batch_timeout_micros { value: 500000 } "
                                          "num_batch_threads { value: 1 } allowed_batch_sizes: 4 allowed_batch_sizes: 8")  # fmt: skip
    server = start_server(config_for(model_base), enable_batching=True, batching_parameters_file=parameters,
                          monitoring_config_file=str(monitoring), rest_api_port=free_port)  # fmt: skip
    predict, _ = stubs(server)
    clips = [savedmodels.clips(1, seed=seed) for seed in range(3)]
    with futures.ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(
            lambda frames: predict.Predict(predict_request("tiny", {"frames": frames}, "features_graph"), timeout=60),
            clips,
        ))  # fmt: skip
    assert seen_batches == [4]  # three requests, one run, padded to the next allowed size
    reference = tf.saved_model.load(str(model_base / "1")).signatures["features_graph"]
    for frames, answer in zip(clips, answers):
        want = reference(frames=tf.constant(frames))["features"].numpy()
        np.testing.assert_allclose(tf.make_ndarray(answer.outputs["features"]), want, atol=1e-4, rtol=0)
    url = f"http://127.0.0.1:{free_port}/monitoring/prometheus/metrics"
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(urllib.request.urlopen(url, timeout=10).read().decode())
        for sample in family.samples
    }
    request = (("model_name", "tiny"), ("signature", "features_graph"), ("status", "OK"), ("version", "1"))
    assert samples[(":tensorflow:serving:request_count_total", request)] == 3
    batch = (("model_name", "tiny"), ("signature", "features_graph"))
    assert samples[(":tensorflow:serving:batching_session:input_batch_size_sum", batch)] == 3
    assert samples[(":tensorflow:serving:batching_session:processed_batch_size_sum", batch)] == 4
    state = (("model_name", "tiny"), ("state", "AVAILABLE"), ("version", "1"))
    assert samples[(":tensorflow:serving:model_version_state", state)] == 1


def test_full_batch_queue_answers_unavailable_and_the_server_goes_on(
    start_server, stubs, model_base, tmp_path, monkeypatch
):
    parameters = write_batching(tmp_path, "max_batch_size { value: 1 } batch_timeout_micros { value: 0 } "
                                          "num_batch_threads { value: 1 } max_enqueued_batches { value: 1 }")  # fmt: skip
    server = start_server(config_for(model_base), enable_batching=True, batching_parameters_file=parameters)
    predict, _ = stubs(server)
    release = threading.Event()
    original = Servable.run

    def held_run(self, *args, **kwargs):
        release.wait(30)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Servable, "run", held_run)
    request = predict_request("tiny", {"frames": savedmodels.clips(1)}, "features_graph")
    calls = [predict.Predict.future(request, timeout=60) for _ in range(6)]
    # one request runs, one batch waits in the queue, the rest are turned away at once
    wait_for(lambda: any(call.done() for call in calls), what="a request to be turned away")
    time.sleep(0.5)
    rejected = [call for call in calls if call.done()]
    release.set()
    assert rejected and {call.code() for call in rejected} == {grpc.StatusCode.UNAVAILABLE}
    assert "batch queue" in rejected[0].details()
    for call in calls:
        call.exception(timeout=60)
    assert predict.Predict(request, timeout=60).model_spec.version.value == 1


def test_request_too_big_for_a_batch_is_invalid_argument(start_server, stubs, model_base, tmp_path):
    parameters = write_batching(tmp_path, "max_batch_size { value: 2 } batch_timeout_micros { value: 1000 }")
    server = start_server(config_for(model_base), enable_batching=True, batching_parameters_file=parameters)
    predict, _ = stubs(server)
    with pytest.raises(grpc.RpcError) as caught:
        predict.Predict(predict_request("tiny", {"frames": savedmodels.clips(3)}, "features_graph"), timeout=60)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_deadline_passing_in_the_batch_queue_is_deadline_exceeded(start_server, model_base, tmp_path):
    from vswin.serving.prediction_service import PredictionService

    parameters = write_batching(tmp_path, "max_batch_size { value: 8 } batch_timeout_micros { value: 3000000 }")
    server = start_server(config_for(model_base), enable_batching=True, batching_parameters_file=parameters)
    service = PredictionService(server.manager, server.scheduler)
    request = predict_request("tiny", {"frames": savedmodels.clips(1)}, "features_graph")
    with pytest.raises(Aborted) as caught:
        service.Predict(request, FakeContext(remaining=0.3))
    assert caught.value.args == (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline exceeded while waiting in the batch queue")


def test_a_short_deadline_fails_only_its_own_request_in_a_merged_batch(
    start_server, stubs, model_base, tmp_path, monkeypatch
):
    """Servable.run honours its timeout like Session.run; a batch must not run under one caller's deadline."""
    parameters = write_batching(tmp_path, "max_batch_size { value: 2 } batch_timeout_micros { value: 300000 } "
                                          "num_batch_threads { value: 1 }")  # fmt: skip
    server = start_server(config_for(model_base), enable_batching=True, batching_parameters_file=parameters)
    predict, _ = stubs(server)
    original = Servable.run

    def slow_run(self, signature_name, inputs, output_filter=(), timeout=None):
        if timeout is not None and timeout < 1.5:
            from vswin.serving.errors import ServingError

            raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, "Timed out (run under a short deadline)")
        time.sleep(1.5)
        return original(self, signature_name, inputs, output_filter, timeout)

    monkeypatch.setattr(Servable, "run", slow_run)
    request = predict_request("tiny", {"frames": savedmodels.clips(1)}, "features_graph")
    short = predict.Predict.future(request, timeout=1.0)  # first in the batch
    time.sleep(0.05)
    long = predict.Predict.future(request, timeout=60)
    assert tf.make_ndarray(long.result().outputs["features"]).shape == (1, savedmodels.FEATURES)
    with pytest.raises(grpc.RpcError) as caught:
        short.result()
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
