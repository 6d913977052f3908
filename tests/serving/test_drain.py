"""SIGTERM drain: a grace period flag, then requests still running are logged, cancelled and stopped (defect 7)."""

from __future__ import annotations

import logging
import threading

import grpc
import numpy as np
import pytest

from tests.serving.requests import config_for, predict_request, wait_for
from vswin.cli import build_parser
from vswin.serving.main import options_from_args

pytestmark = pytest.mark.slow

FOREVER = 10**12  # loop iterations of the spinner: hours


def spin_request(iterations: int):
    return predict_request("spinner", {"n": np.array([iterations], np.int64)}, "spin")


def test_grace_period_is_a_flag_defaulting_to_30_s():
    parse = build_parser().parse_args
    assert options_from_args(parse(["serve", "--model_base_path=/m"])).shutdown_grace_period_seconds == 30.0
    options = options_from_args(parse(["serve", "--model_base_path=/m", "--shutdown_grace_period_seconds=2.5"]))
    assert options.shutdown_grace_period_seconds == 2.5


@pytest.mark.parametrize("batching", [False, True], ids=["direct", "batching"])
def test_requests_outliving_the_grace_period_are_cancelled_logged_and_their_computation_stopped(
    start_server, stubs, spinner_base, tmp_path, caplog, batching
):
    options = {"shutdown_grace_period_seconds": 1.0}
    if batching:
        params = tmp_path / "batching.txt"
        params.write_text("max_batch_size { value: 4 } batch_timeout_micros { value: 0 } num_batch_threads { value: 1 }")
        options.update(enable_batching=True, batching_parameters_file=str(params))
    server = start_server(config_for(spinner_base, name="spinner"), **options)
    predict, _ = stubs(server)
    running = predict.Predict.future(spin_request(FOREVER), timeout=3600)
    wait_for(lambda: server.in_flight.snapshot(), timeout=60, what="the request to run")
    stopped: list[int] = []
    with caplog.at_level(logging.INFO, logger="vswin.serving.server"):
        stopping = threading.Thread(target=lambda: stopped.append(server.stop()))
        stopping.start()
        stopping.join(300)  # the loop runs for hours: stop() returning at all means its computation was stopped
    assert not stopping.is_alive()
    assert stopped == [0]
    assert not server.in_flight.snapshot()
    with pytest.raises(grpc.RpcError) as caught:
        running.result()
    assert caught.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
    assert "requests in flight have 1 s to finish" in caplog.text
    assert "drain period over: cancelling 1 request(s) in flight: spinner version 1 spin (1 rows, running" in caplog.text
    assert "cancelled 1 request(s); their computation stopped" in caplog.text


def test_requests_that_finish_within_the_grace_period_are_answered(start_server, stubs, spinner_base, caplog,
                                                                  monkeypatch):
    from vswin.serving.servable import Servable

    server = start_server(config_for(spinner_base, name="spinner"), shutdown_grace_period_seconds=120.0)
    predict, _ = stubs(server)
    gate = threading.Event()
    original = Servable.run
    monkeypatch.setattr(Servable, "run", lambda self, *args, **kwargs: gate.wait(120) and original(self, *args, **kwargs))
    answer = predict.Predict.future(spin_request(100), timeout=300)
    wait_for(lambda: server.in_flight.snapshot(), timeout=60, what="the request to run")
    stopping = threading.Thread(target=server.stop)
    stopping.start()
    wait_for(server._stopping.is_set, what="stop to begin")
    gate.set()
    assert answer.result().outputs["x"].float_val
    stopping.join(300)
    assert not stopping.is_alive()
    assert "cancelling" not in caplog.text


def test_a_rest_request_outliving_the_grace_period_is_cancelled_too(start_server, spinner_base, free_port, caplog):
    import http.client
    import json

    server = start_server(config_for(spinner_base, name="spinner"), rest_api_port=free_port,
                          shutdown_grace_period_seconds=1.0)  # fmt: skip
    answers: list[tuple[int, dict]] = []

    def call() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", free_port, timeout=600)
        body = json.dumps({"signature_name": "spin", "instances": [FOREVER]})
        connection.request("POST", "/v1/models/spinner:predict", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        answers.append((response.status, json.loads(response.read())))
        connection.close()

    caller = threading.Thread(target=call)
    caller.start()
    wait_for(lambda: server.in_flight.snapshot(), timeout=60, what="the REST request to run")
    with caplog.at_level(logging.INFO, logger="vswin.serving.server"):
        assert server.stop() == 0
    caller.join(300)
    assert answers and answers[0][0] == 499, answers
    assert "shutting down" in answers[0][1]["error"]
    assert "cancelling 1 request(s) in flight: spinner version 1 spin" in caplog.text
