"""promote/rollback with --server: load before label, reload after each write, refuse what is not AVAILABLE.

The real local server in this process (tiny exports) with a fault interceptor that records each reload and can
answer for the server (a version stuck LOADING, a refused reload), so the order of calls and the refusals are
checked exactly; tests/serving_config/test_rollout.py runs a rollout under load on `vswin serve` itself.
"""

from __future__ import annotations

import shutil

import pytest
from tensorflow_serving.apis import get_model_status_pb2, model_management_pb2

from tests.tiny_exports import TinyServer, save_tiny_export
from vswin.cli import main
from vswin.serving.model_config import read_model_config

State = get_model_status_pb2.ModelVersionStatus.State
RELOAD = "HandleReloadConfigRequest"


@pytest.fixture(scope="module")
def tiny_version(tmp_path_factory):
    return save_tiny_export(tmp_path_factory.mktemp("tiny") / "1")


@pytest.fixture()
def config(tmp_path, tiny_version):
    for version in (1, 2):
        shutil.copytree(tiny_version, tmp_path / "models" / "tiny" / str(version))
    path = tmp_path / "models.config"
    assert main(["config", "generate", str(tmp_path / "models"), "--policy", "specific", "--label", "stable=1",
                 "--out", str(path)]) == 0
    return path


@pytest.fixture()
def serve(config):
    """The config as it is now, served; the server is stopped after the test."""
    servers = []

    def start() -> TinyServer:
        servers.append(TinyServer(read_model_config(config)))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def _labels(config) -> dict[str, int]:
    return dict(config.model_config_list.config[0].version_labels)


def test_promote_loads_the_version_then_moves_the_label_and_reloads_each_time(config, serve):
    server = serve()
    common = ["--config", str(config), "--server", server.target]
    assert main(["config", "promote", "tiny", "--label", "canary", "--version", "2", *common]) == 0
    first, second = (request.config for request in server.faults.requests(RELOAD))
    assert list(first.model_config_list.config[0].model_version_policy.specific.versions) == [1, 2]
    assert _labels(first) == {"stable": 1}
    assert _labels(second) == {"stable": 1, "canary": 2}
    assert main(["config", "promote", "tiny", "--label", "stable", "--from", "canary", *common]) == 0
    assert main(["config", "rollback", "tiny", *common]) == 0
    assert [_labels(r.config) for r in server.faults.requests(RELOAD)[2:]] == [
        {"stable": 2, "canary": 2}, {"stable": 1, "canary": 2}]
    assert server.server.manager.available()["tiny"] == [1, 2]


def test_promote_refuses_a_version_the_server_has_not_made_available(config, serve, capsys):
    server = serve()

    def loading(request):
        if request.model_spec.version.value != 2:
            return None  # the server answers
        response = get_model_status_pb2.GetModelStatusResponse()
        response.model_version_status.add(version=2, state=State.LOADING)
        return response

    server.faults.answer("GetModelStatus", loading)
    assert main(["config", "promote", "tiny", "--label", "canary", "--version", "2", "--config", str(config),
                 "--server", server.target, "--wait", "0.5"]) == 1
    assert "reports version 2 as LOADING, not AVAILABLE" in capsys.readouterr().err
    assert "canary" not in config.read_text()


def test_promote_refuses_a_version_the_server_does_not_know(config, serve, capsys):
    server = serve()
    text = config.read_text().replace("versions: 1", "versions: 1\n      versions: 2")
    config.write_text(text)  # served by the policy, but this server never loaded it
    assert main(["config", "promote", "tiny", "--label", "canary", "--version", "2", "--config", str(config),
                 "--server", server.target]) == 1
    assert "reports version 2 as unknown" in capsys.readouterr().err


def test_reload_refusal_is_reported_with_the_server_message(config, serve, capsys):
    server = serve()

    def refuse(request):
        response = model_management_pb2.ReloadConfigResponse()
        response.status.error_code = 9
        response.status.error_message = "label points at unavailable version"
        return response

    server.faults.answer(RELOAD, refuse)
    before = config.read_text()
    assert main(["config", "promote", "tiny", "--label", "canary", "--version", "1", "--config", str(config),
                 "--server", server.target]) == 1
    assert "reload refused: label points at unavailable version" in capsys.readouterr().err
    assert config.read_text() == before and not config.with_name("models.config.journal").exists()

