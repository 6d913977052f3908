"""`vswin serve`'s command line: TF Serving's flags, rejected flags, and a real process stopped by SIGTERM."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf

from tests.serving import savedmodels
from tests.serving.requests import predict_request, states, status_request
from vswin import contract
from vswin.cli import _has_nvidia_driver, build_parser
from vswin.serving.flags import INT32_MAX
from vswin.serving.main import options_from_args


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *argv])


def test_tf_serving_flags_parse_with_tf_servings_defaults():
    args = parse("--model_base_path=/models/m")
    assert (args.port, args.model_name, args.rest_api_port) == (8500, "default", 0)
    assert args.enable_model_warmup is True and args.enable_batching is False
    assert args.file_system_poll_wait_seconds == 1 and args.model_config_file_poll_wait_seconds == 0
    assert args.grpc_max_message_size == INT32_MAX
    assert not (args.xla_cpu_compilation_enabled or args.xla_gpu_compilation_enabled)


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--enable_batching", True), ("--enable_batching=true", True), ("--enable_batching=false", False),
     ("--enable_batching=1", True)],
)  # fmt: skip
def test_boolean_flags_take_tf_servings_forms(flag, value):
    assert parse(flag).enable_batching is value


def test_options_carry_every_flag(tmp_path):
    config = tmp_path / "models.config"
    config.write_text('model_config_list { config { name: "a" base_path: "/m/a" model_platform: "tensorflow" } }')
    args = parse(f"--model_config_file={config}", "--model_config_file_poll_wait_seconds=5", "--port=9000",
                 "--enable_grpc_healthcheck_service", "--xla_gpu_compilation_enabled=true",
                 "--enable_serialization_as_tensor_content", "--allow_version_labels_for_unavailable_models",
                 "--enable_batching", "--batching_parameters_file=b.txt", "--monitoring_config_file=m.config",
                 "--rest_api_port=8501", "--file_system_poll_wait_seconds=0", "--enable_model_warmup=false")  # fmt: skip
    options = options_from_args(args)
    assert [c.name for c in options.model_config.model_config_list.config] == ["a"]
    assert options.port == 9000 and options.model_config_file_poll_wait_seconds == 5
    assert options.enable_grpc_healthcheck_service and options.xla_gpu_compilation_enabled
    assert options.enable_serialization_as_tensor_content and options.allow_version_labels_for_unavailable_models
    assert options.enable_batching and options.batching_parameters_file == "b.txt"
    assert (options.monitoring_config_file, options.rest_api_port) == ("m.config", 8501)
    assert options.file_system_poll_wait_seconds == 0 and options.enable_model_warmup is False


def test_single_model_flags_make_tf_servings_one_model_config():
    options = options_from_args(parse("--model_name=vswin", "--model_base_path=/models/vswin"))
    (entry,) = options.model_config.model_config_list.config
    assert (entry.name, entry.base_path, entry.model_platform) == ("vswin", "/models/vswin", "tensorflow")


def test_missing_model_is_a_clear_error():
    with pytest.raises(ValueError, match="--model_config_file or --model_base_path"):
        options_from_args(parse())


def test_unimplemented_tf_serving_flag_is_rejected_by_name(capsys):
    with pytest.raises(SystemExit):
        parse("--ssl_config_file=ssl.config")
    assert "--ssl_config_file is a tensorflow_model_server flag that vswin serve does not implement" in (
        capsys.readouterr().err
    )


def test_unknown_flag_is_rejected(capsys):
    with pytest.raises(SystemExit):
        parse("--model_base_path=/m", "--enable_batchin")
    assert "unrecognized arguments: --enable_batchin" in capsys.readouterr().err


@pytest.mark.slow
def test_serve_process_serves_logs_and_exits_0_on_sigterm(model_base, free_port, subprocess_env, tmp_path):
    """Also what the process makes of an environment without the serving settings or a TensorFlow log level:
    oneDNN on and the BFC allocator set before TensorFlow loaded (vswin.runtime), and no "failed call to cuInit"
    from TensorFlow's GPU probing on a machine without a GPU (issue 12, 10)."""
    log_path = tmp_path / "serve.log"
    command = [sys.executable, "-m", "vswin", "serve", f"--port={free_port}", "--host=127.0.0.1",
               "--model_name=tiny", f"--model_base_path={model_base}"]  # fmt: skip
    unset = {"TF_CPP_MIN_LOG_LEVEL", *contract.SERVING_ENVIRONMENT}
    env = {key: value for key, value in subprocess_env.items() if key not in unset}
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{free_port}") as channel:
            from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

            models = model_service_pb2_grpc.ModelServiceStub(channel)
            deadline = time.monotonic() + 120
            while True:
                assert process.poll() is None, log_path.read_text()
                try:
                    if states(models.GetModelStatus(status_request("tiny"), timeout=5)) == {1: "AVAILABLE"}:
                        break
                except grpc.RpcError:
                    pass
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.3)
            predict = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            response = predict.Predict(predict_request("tiny", {"frames": savedmodels.clips(4)}, "features_graph"),
                                       timeout=60)  # fmt: skip
            features = tf.make_ndarray(response.outputs["features"])
        process.send_signal(signal.SIGTERM)  # draining a request in flight: test_stop_lets_requests_in_flight_finish
        assert features.shape == (4, savedmodels.FEATURES) and np.isfinite(features).all()
        assert process.wait(timeout=120) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log_text = log_path.read_text()
    assert "model tiny version 1 is serving" in log_text
    assert "serving tiny versions [1]" in log_text
    assert "server stopped" in log_text
    assert "process settings: TF_ENABLE_ONEDNN_OPTS=1 TF_CPU_ALLOCATOR_USE_BFC=true" in log_text
    assert f"running on TensorFlow {tf.__version__}, oneDNN on" in log_text
    if not _has_nvidia_driver():  # with an NVIDIA driver cuInit succeeds and logs nothing
        assert "failed call to cuInit" not in log_text


# SIGTERM sent to one of the process's other threads while the main thread waits for it.
_SIGNAL_TO_ANOTHER_THREAD = """
import linecache, signal, sys, threading, time
from vswin.serving.main import wait_until_set

stop = threading.Event()
signal.signal(signal.SIGTERM, lambda number, frame: stop.set())
sleeper = threading.Thread(target=time.sleep, args=(3600,), daemon=True)
sleeper.start()
main = threading.main_thread().ident

def blocked_on_its_lock():  # the main thread is at Condition.wait's `waiter.acquire(...)`
    frame = sys._current_frames()[main]
    return "waiter.acquire(" in linecache.getline(frame.f_code.co_filename, frame.f_lineno)

def signal_once_the_main_thread_waits():
    while not blocked_on_its_lock():
        time.sleep(0.01)
    time.sleep(0.05)  # past the few bytecodes between that line and the wait itself
    signal.pthread_kill(sleeper.ident, signal.SIGTERM)

threading.Thread(target=signal_once_the_main_thread_waits, daemon=True).start()
wait_until_set(stop)
print("stopped")
"""


def test_a_stop_signal_that_another_thread_receives_ends_the_wait(subprocess_env):
    """The kernel may deliver SIGTERM to any of TensorFlow's or gRPC's threads. A wait without a timeout never
    woke for it (a loaded run saw `vswin serve` ignore SIGTERM until killed); wait_until_set does."""
    done = subprocess.run([sys.executable, "-c", _SIGNAL_TO_ANOTHER_THREAD], env=subprocess_env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert (done.returncode, done.stdout.strip()) == (0, "stopped"), done.stderr


@pytest.mark.slow
def test_stop_lets_requests_in_flight_finish_and_refuses_new_ones(start_server, stubs, model_base, monkeypatch):
    import threading

    from tests.serving.requests import config_for, wait_for
    from vswin.serving.servable import Servable

    server = start_server(config_for(model_base))
    predict, _ = stubs(server)
    entered, release = threading.Event(), threading.Event()
    original = Servable.run

    def slow_run(self, *args, **kwargs):
        entered.set()
        release.wait(30)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Servable, "run", slow_run)
    request = predict_request("tiny", {"frames": savedmodels.clips(2)}, "features_graph")
    in_flight = predict.Predict.future(request, timeout=60)
    assert entered.wait(30)
    stopping = threading.Thread(target=server.stop, kwargs={"grace": 30})
    stopping.start()
    wait_for(server._stopping.is_set, what="stop to begin")
    time.sleep(0.3)
    with pytest.raises(grpc.RpcError) as caught:
        predict.Predict(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    release.set()
    assert tf.make_ndarray(in_flight.result().outputs["features"]).shape == (2, savedmodels.FEATURES)
    stopping.join(30)
    assert not stopping.is_alive()
