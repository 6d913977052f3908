"""Versions while serving: policies, labels, reloads under load, polling, corrupt versions, unload draining."""

from __future__ import annotations

import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from google.protobuf import text_format

from tests.serving import savedmodels
from tests.serving.requests import config_for, predict_request, reload_request, served_version, states, status_request, wait_for
from vswin.serving.model_config import ModelServerConfig
from vswin.serving.servable import Servable

pytestmark = pytest.mark.slow


@pytest.fixture()
def three_versions(model_base: Path, tiny_version: Path, tiny_version_b: Path) -> Path:
    savedmodels.copy_version(tiny_version_b, model_base, 2)
    savedmodels.copy_version(tiny_version, model_base, 3)
    return model_base


@pytest.mark.parametrize(
    ("policy", "available"),
    [("", [3]), ("latest { num_versions: 2 }", [2, 3]), ("specific { versions: 1 versions: 3 }", [1, 3]),
     ("all {}", [1, 2, 3])],
    ids=["default-latest-1", "latest-2", "specific", "all"],
)  # fmt: skip
def test_version_policies_choose_what_loads(start_server, stubs, three_versions, policy, available):
    server = start_server(config_for(three_versions, policy))
    predict, models = stubs(server)
    status = states(models.GetModelStatus(status_request("tiny"), timeout=30))
    assert sorted(v for v, s in status.items() if s == "AVAILABLE") == available
    assert served_version(predict) == max(available)
    for version in available:
        assert served_version(predict, version=version) == version


def test_policy_switch_and_label_moves_by_reload_under_load_have_zero_failures(start_server, stubs, three_versions):
    server = start_server(config_for(three_versions, "specific { versions: 1 versions: 2 }", {"stable": 1}))
    predict, models = stubs(server)
    failures: list[Exception] = []
    answered: list[int] = []
    stop = threading.Event()

    def stream() -> None:
        for _ in range(400):  # bounded: at most 400 requests or until the reloads are done
            if stop.is_set():
                return
            try:
                answered.append(served_version(predict, label="stable"))
                served_version(predict)
            except grpc.RpcError as err:
                failures.append(err)

    steps = [
        (config_for(three_versions, "specific { versions: 1 versions: 2 }", {"stable": 2}), 2),  # label move
        (config_for(three_versions, "latest { num_versions: 1 }", {"stable": 3}), 3),  # policy switch + move
        (config_for(three_versions, "specific { versions: 2 versions: 3 }", {"stable": 2, "canary": 3}), 2),
    ]
    with futures.ThreadPoolExecutor(2) as pool:
        running = [pool.submit(stream), pool.submit(stream)]
        time.sleep(0.3)
        for config, stable in steps:
            response = models.HandleReloadConfigRequest(reload_request(config), timeout=120)
            assert response.status.error_code == 0
            assert served_version(predict, label="stable") == stable
            time.sleep(0.3)
        stop.set()
        for task in running:
            task.result()
    assert not failures, [f"{e.code()}: {e.details()}" for e in failures[:3]]
    assert len(answered) > 10 and {1, 2, 3} <= set(answered)
    assert states(models.GetModelStatus(status_request("tiny"), timeout=30)) == {1: "END", 2: "AVAILABLE", 3: "AVAILABLE"}
    assert served_version(predict, label="canary") == 3


def test_label_on_unavailable_version_fails_the_reload_and_keeps_old_labels(start_server, stubs, three_versions):
    server = start_server(config_for(three_versions, "specific { versions: 1 }", {"stable": 1}))
    predict, models = stubs(server)
    with pytest.raises(grpc.RpcError) as caught:
        models.HandleReloadConfigRequest(
            reload_request(config_for(three_versions, "specific { versions: 1 }", {"stable": 2})), timeout=60
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "version 2 of model tiny, which is not currently available" in caught.value.details()
    assert served_version(predict, label="stable") == 1


def test_allow_version_labels_for_unavailable_models_accepts_a_new_label(start_server, stubs, three_versions):
    server = start_server(config_for(three_versions, "specific { versions: 1 }"),
                          allow_version_labels_for_unavailable_models=True)  # fmt: skip
    predict, models = stubs(server)
    config = config_for(three_versions, "specific { versions: 1 }", {"canary": 2})
    assert models.HandleReloadConfigRequest(reload_request(config), timeout=60).status.error_code == 0
    with pytest.raises(grpc.RpcError) as caught:
        served_version(predict, label="canary")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == "Servable not found for request: Specific(tiny, 2); model tiny: version 1 AVAILABLE"


def test_bad_reload_config_is_rejected_and_the_old_config_keeps_serving(start_server, stubs, three_versions):
    server = start_server(config_for(three_versions))
    predict, models = stubs(server)
    bad = ModelServerConfig()
    text_format.Parse(f'model_config_list {{ config {{ name: "a" base_path: "{three_versions}" }} '
                      f'config {{ name: "a" base_path: "{three_versions}" }} }}', bad)  # fmt: skip
    with pytest.raises(grpc.RpcError) as caught:
        models.HandleReloadConfigRequest(reload_request(bad), timeout=60)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'a' appears more than once" in caught.value.details()
    assert served_version(predict) == 3


def test_get_model_status_for_unknown_model_or_version_is_not_found(start_server, stubs, model_base):
    _, models = stubs(start_server(config_for(model_base)))
    for request, message in [
        (status_request("nope"), "Could not find any versions of model nope; models served: tiny"),
        (status_request("tiny", 7), "Could not find version 7 of model tiny"),
    ]:
        with pytest.raises(grpc.RpcError) as caught:
            models.GetModelStatus(request, timeout=30)
        assert (caught.value.code(), caught.value.details()) == (grpc.StatusCode.NOT_FOUND, message)


def test_new_versions_load_and_old_ones_unload_by_polling_the_base_path(start_server, stubs, model_base, tiny_version_b):
    server = start_server(config_for(model_base), file_system_poll_wait_seconds=1)
    predict, models = stubs(server)
    assert served_version(predict) == 1
    savedmodels.copy_version(tiny_version_b, model_base, 2)
    wait_for(lambda: states(models.GetModelStatus(status_request("tiny"), timeout=30)) == {1: "END", 2: "AVAILABLE"},
             what="version 2 to replace version 1")  # fmt: skip
    assert served_version(predict) == 2


def test_corrupt_version_is_reported_and_good_versions_keep_serving(start_server, stubs, three_versions):
    savedmodels.make_corrupt_version(three_versions, 4)
    server = start_server(config_for(three_versions, "all {}"))
    predict, models = stubs(server)
    response = models.GetModelStatus(status_request("tiny"), timeout=30)
    assert states(response) == {1: "AVAILABLE", 2: "AVAILABLE", 3: "AVAILABLE", 4: "END"}
    broken = next(entry for entry in response.model_version_status if entry.version == 4)
    assert broken.status.error_code == grpc.StatusCode.UNKNOWN.value[0]
    assert str(three_versions / "4") in broken.status.error_message
    assert served_version(predict) == 3


def test_corrupt_new_latest_version_leaves_the_old_one_serving(start_server, stubs, three_versions):
    server = start_server(config_for(three_versions), file_system_poll_wait_seconds=1)
    predict, models = stubs(server)
    savedmodels.make_corrupt_version(three_versions, 5)
    wait_for(lambda: states(models.GetModelStatus(status_request("tiny"), timeout=30)).get(5) == "END",
             what="version 5 to fail")  # fmt: skip
    assert states(models.GetModelStatus(status_request("tiny"), timeout=30))[3] == "AVAILABLE"
    assert served_version(predict) == 3


def test_request_in_flight_on_an_unloading_version_completes(start_server, stubs, three_versions, monkeypatch):
    server = start_server(config_for(three_versions, "specific { versions: 1 versions: 2 }"))
    predict, models = stubs(server)
    entered, release = threading.Event(), threading.Event()
    original = Servable.run

    def slow_run(self, *args, **kwargs):
        if self.version == 1:
            entered.set()
            release.wait(30)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Servable, "run", slow_run)
    request = predict_request("tiny", {"frames": savedmodels.clips(1)}, "features_graph", version=1)
    in_flight = predict.Predict.future(request, timeout=60)
    assert entered.wait(30)
    reload = models.HandleReloadConfigRequest.future(
        reload_request(config_for(three_versions, "specific { versions: 2 }")), timeout=60
    )
    wait_for(lambda: states(models.GetModelStatus(status_request("tiny"), timeout=30))[1] == "UNLOADING",
             what="version 1 to start unloading")  # fmt: skip
    with pytest.raises(grpc.RpcError) as caught:
        served_version(predict, version=1)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert not reload.done()
    release.set()
    assert in_flight.result().model_spec.version.value == 1
    assert reload.result().status.error_code == 0
    assert states(models.GetModelStatus(status_request("tiny"), timeout=30)) == {1: "END", 2: "AVAILABLE"}


def test_config_file_changes_are_polled_and_a_bad_file_keeps_the_old_config(start_server, stubs, three_versions, tmp_path):
    from vswin.serving.model_config import config_text

    path = tmp_path / "models.config"
    path.write_text(config_text(config_for(three_versions)))
    server = start_server(config_for(three_versions), model_config_file=str(path), model_config_file_poll_wait_seconds=1)
    predict, models = stubs(server)
    assert served_version(predict) == 3
    path.write_text("model_config_list { config { name: ")  # broken mid-write
    time.sleep(2.5)
    assert served_version(predict) == 3
    path.write_text(config_text(config_for(three_versions, "specific { versions: 1 }")))
    wait_for(lambda: states(models.GetModelStatus(status_request("tiny"), timeout=30)) == {1: "AVAILABLE", 3: "END"},
             what="the polled config to switch to version 1")  # fmt: skip
    assert served_version(predict) == 1


def test_label_on_a_version_the_new_policy_drops_is_rejected(start_server, stubs, three_versions):
    server = start_server(config_for(three_versions, "specific { versions: 1 versions: 2 }", {"stable": 1}))
    predict, models = stubs(server)
    with pytest.raises(grpc.RpcError) as caught:
        models.HandleReloadConfigRequest(
            reload_request(config_for(three_versions, "specific { versions: 1 }", {"stable": 2})), timeout=60
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert served_version(predict, label="stable") == 1
    # Rejected before anything moved: the old policy's versions all still serve.
    assert states(models.GetModelStatus(status_request("tiny"), timeout=30)) == {1: "AVAILABLE", 2: "AVAILABLE"}


def test_rejected_reload_leaves_the_old_config_serving(start_server, stubs, three_versions):
    """A new policy with a label on a version it does not serve: nothing loads or unloads, labels keep working."""
    server = start_server(config_for(three_versions, "specific { versions: 1 }", {"stable": 1}))
    predict, models = stubs(server)
    with pytest.raises(grpc.RpcError) as caught:
        models.HandleReloadConfigRequest(
            reload_request(config_for(three_versions, "specific { versions: 2 }", {"stable": 3})), timeout=60
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "version 3 of model tiny" in caught.value.details()
    assert states(models.GetModelStatus(status_request("tiny"), timeout=30)) == {1: "AVAILABLE"}
    assert served_version(predict, label="stable") == 1
    assert served_version(predict) == 1
