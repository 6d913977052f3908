"""Warmup replay at load (assets.extra/tf_serving_warmup_requests) and gRPC health transitions."""

from __future__ import annotations

import logging
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.serving import savedmodels
from tests.serving.conftest import channel_to
from tests.serving.requests import config_for, predict_request, reload_request, served_version, states, status_request, wait_for
from vswin.export.warmup import warmup_logs, write_warmup
from vswin.serving.model_config import parse_model_config

pytestmark = pytest.mark.slow

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def add_warmup(version_dir: Path, signatures: tuple[str, ...]) -> None:
    """Each signature at batch 1 and 3, encoded as `vswin export` encodes them (zero frames, one broadcast value)."""
    plan = [(signature, batch) for signature in signatures for batch in (1, 3)]
    write_warmup(version_dir / "assets.extra", warmup_logs("tiny", plan, savedmodels.CLIP))


def version_error(models, version: int) -> str:
    response = models.GetModelStatus(status_request("tiny"), timeout=30)
    return next(entry.status.error_message for entry in response.model_version_status if entry.version == version)


def test_warmup_records_are_replayed_at_load(start_server, stubs, model_base, caplog):
    add_warmup(model_base / "1", ("serving_default", "features_graph"))
    with caplog.at_level(logging.INFO, logger="vswin.serving.servable"):
        server = start_server(config_for(model_base), xla_cpu_compilation_enabled=True)
    assert "model tiny version 1: replayed 4 warmup records in" in caplog.text
    for index, (signature, batch) in enumerate([("serving_default", 1), ("serving_default", 3),
                                                ("features_graph", 1), ("features_graph", 3)], start=1):
        assert f"model tiny version 1: warmup {index}/4: {signature} batch {batch} in " in caplog.text
    predict, models = stubs(server)
    assert states(models.GetModelStatus(status_request("tiny"), timeout=30)) == {1: "AVAILABLE"}
    assert served_version(predict) == 1


def test_warmup_of_an_xla_signature_without_xla_flags_fails_the_load_like_tf_serving(start_server, stubs, model_base):
    add_warmup(model_base / "1", ("serving_default",))
    predict, models = stubs(start_server(config_for(model_base)))
    assert states(models.GetModelStatus(status_request("tiny"), timeout=30)) == {1: "END"}
    error = version_error(models, 1)
    assert "XLA compilation disabled" in error
    for remedy in ("--xla_cpu_compilation_enabled=true", "--xla_gpu_compilation_enabled=true",
                   "vswin export --default-signature graph"):
        assert remedy in error
    with pytest.raises(grpc.RpcError) as caught:  # the request names the failed load, not just NOT_FOUND
        predict.Predict(predict_request("tiny", {"frames": savedmodels.clips(1)}), timeout=30)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details().startswith("Servable not found for request: Latest(tiny); model tiny: version 1 END")
    assert "--xla_cpu_compilation_enabled=true" in caught.value.details()


def test_bad_warmup_record_fails_the_load_unless_warmup_is_off(start_server, stubs, model_base):
    bad = predict_request("tiny", {"frames": np.zeros((1, 4, 64, 64, 3), np.uint8)}, "features_graph")
    savedmodels.write_warmup(model_base / "1", [bad])
    _, models = stubs(start_server(config_for(model_base)))
    assert states(models.GetModelStatus(status_request("tiny"), timeout=30)) == {1: "END"}
    assert "tf_serving_warmup_requests record 0" in version_error(models, 1)
    assert "expects uint8 [-1,16,64,64,3]" in version_error(models, 1)
    predict, models = stubs(start_server(config_for(model_base), enable_model_warmup=False))
    assert served_version(predict) == 1


def test_more_than_1000_warmup_records_fail_the_load(start_server, stubs, model_base):
    one = predict_request("tiny", {"frames": np.zeros((1, *savedmodels.CLIP), np.uint8)}, "features_graph")
    savedmodels.write_warmup(model_base / "1", [one] * 1001)
    _, models = stubs(start_server(config_for(model_base)))
    assert "1001 warmup records; at most 1000" in version_error(models, 1)


def health_of(channel: grpc.Channel, service: str = "") -> int:
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status


def test_health_is_serving_only_when_every_model_has_a_version(start_server, stubs, model_base, tiny_version, tmp_path):
    server = start_server(config_for(model_base), enable_grpc_healthcheck_service=True, file_system_poll_wait_seconds=1)
    _, models = stubs(server)
    channel = channel_to(server)
    try:
        assert health_of(channel) == SERVING and health_of(channel, "tiny") == SERVING
        empty = tmp_path / "later"
        two_models = parse_model_config(
            f'model_config_list {{ config {{ name: "tiny" base_path: "{model_base}" }} '
            f'config {{ name: "later" base_path: "{empty}" }} }}'
        )
        assert models.HandleReloadConfigRequest(reload_request(two_models), timeout=60).status.error_code == 0
        assert health_of(channel) == NOT_SERVING
        assert (health_of(channel, "tiny"), health_of(channel, "later")) == (SERVING, NOT_SERVING)
        savedmodels.copy_version(tiny_version, empty, 1)
        wait_for(lambda: health_of(channel) == SERVING, what="health to turn SERVING")
        assert health_of(channel, "later") == SERVING
    finally:
        channel.close()
    server.stop(grace=5)
    assert server.health.Check(health_pb2.HealthCheckRequest(service=""), None).status == NOT_SERVING


def test_health_service_is_absent_unless_enabled(start_server, model_base):
    server = start_server(config_for(model_base))
    with channel_to(server) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            health_of(channel)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.parametrize(("warmed", "message"), [
    ([1, 2], "batch sizes [4] compile on the first request that needs them; export with --batch-sizes 1,2,4"),
    ([1, 2, 4, 8], "warmed-up sizes [8] are never used; export with --batch-sizes 1,2,4"),
])  # fmt: skip
def test_warmup_sizes_that_differ_from_the_batching_plan_are_a_warning(start_server, model_base, tmp_path, caplog,
                                                                      warmed, message):
    import json

    (model_base / "1" / "assets.extra").mkdir(exist_ok=True)
    (model_base / "1" / "assets.extra" / "vswin.json").write_text(json.dumps({"warmup_batch_sizes": warmed}))
    params = tmp_path / "batching.txt"
    params.write_text("max_batch_size { value: 4 } allowed_batch_sizes: 1 allowed_batch_sizes: 2 allowed_batch_sizes: 4")
    with caplog.at_level(logging.WARNING, logger="vswin.serving.server"):
        start_server(config_for(model_base), enable_batching=True, batching_parameters_file=str(params))
    assert f"model tiny version 1: warmup batch sizes {warmed} (vswin.json) differ from the batching config's " \
           "allowed_batch_sizes [1, 2, 4]" in caplog.text
    assert message in caplog.text


def test_warmup_sizes_matching_the_batching_plan_are_quiet(start_server, model_base, tmp_path, caplog):
    import json

    (model_base / "1" / "assets.extra").mkdir(exist_ok=True)
    (model_base / "1" / "assets.extra" / "vswin.json").write_text(json.dumps({"warmup_batch_sizes": [1, 2, 4]}))
    params = tmp_path / "batching.txt"
    params.write_text("max_batch_size { value: 4 } allowed_batch_sizes: 1 allowed_batch_sizes: 2 allowed_batch_sizes: 4")
    with caplog.at_level(logging.WARNING, logger="vswin.serving.server"):
        start_server(config_for(model_base), enable_batching=True, batching_parameters_file=str(params))
    assert "warmup batch sizes" not in caplog.text
