"""promote/rollback with --server: load before label, reload after each write, refuse what is not AVAILABLE.

A scripted ModelService (the official servicer base and messages) stands in for the server, so the order of
calls and the refusals are checked exactly; tests/serving_config/test_rollout.py runs the real local server.
"""

from __future__ import annotations

from concurrent import futures

import grpc
import pytest
from tensorflow_serving.apis import get_model_status_pb2, model_management_pb2, model_service_pb2_grpc

from tests.serving_config.savedmodels import write_version
from vswin.cli import main

State = get_model_status_pb2.ModelVersionStatus.State


class ScriptedModelService(model_service_pb2_grpc.ModelServiceServicer):
    """Loads every version a reloaded config's specific policy lists, unless told to keep it LOADING."""

    def __init__(self, available: dict[str, set[int]], stuck: set[int] = frozenset(), refuse: str = ""):
        self.available = available
        self.stuck = stuck
        self.refuse = refuse
        self.reloads = []

    def GetModelStatus(self, request, context):
        name, version = request.model_spec.name, request.model_spec.version.value
        response = get_model_status_pb2.GetModelStatusResponse()
        if version in self.stuck:
            response.model_version_status.add(version=version, state=State.LOADING)
        elif version in self.available.get(name, ()):
            response.model_version_status.add(version=version, state=State.AVAILABLE)
        else:
            context.abort(grpc.StatusCode.NOT_FOUND, f"{name} version {version} not found")
        return response

    def HandleReloadConfigRequest(self, request, context):
        response = model_management_pb2.ReloadConfigResponse()
        if self.refuse:
            response.status.error_code = 9
            response.status.error_message = self.refuse
            return response
        self.reloads.append(request.config)
        for entry in request.config.model_config_list.config:
            self.available[entry.name] = set(entry.model_version_policy.specific.versions)
        return response


@pytest.fixture()
def serve():
    servers = []

    def start(service: ScriptedModelService) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(service, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop(None)


@pytest.fixture()
def config(tmp_path):
    for version in (1, 2):
        write_version(tmp_path / "models" / "tiny", version)
    path = tmp_path / "models.config"
    assert main(["config", "generate", str(tmp_path / "models"), "--policy", "specific", "--label", "stable=1",
                 "--out", str(path)]) == 0
    return path


def test_promote_loads_the_version_then_moves_the_label_and_reloads_each_time(config, serve):
    service = ScriptedModelService({"tiny": {1}})
    target = serve(service)
    assert main(["config", "promote", "tiny", "--label", "canary", "--version", "2", "--config", str(config),
                 "--server", target]) == 0
    first, second = service.reloads
    assert list(first.model_config_list.config[0].model_version_policy.specific.versions) == [1, 2]
    assert dict(first.model_config_list.config[0].version_labels) == {"stable": 1}
    assert dict(second.model_config_list.config[0].version_labels) == {"stable": 1, "canary": 2}
    assert main(["config", "promote", "tiny", "--label", "stable", "--from", "canary", "--config", str(config),
                 "--server", target]) == 0
    assert main(["config", "rollback", "tiny", "--config", str(config), "--server", target]) == 0
    assert [dict(c.model_config_list.config[0].version_labels) for c in service.reloads[2:]] == [
        {"stable": 2, "canary": 2}, {"stable": 1, "canary": 2}]


def test_promote_refuses_a_version_the_server_has_not_made_available(config, serve, capsys):
    target = serve(ScriptedModelService({"tiny": {1}}, stuck={2}))
    assert main(["config", "promote", "tiny", "--label", "canary", "--version", "2", "--config", str(config),
                 "--server", target, "--wait", "0.5"]) == 1
    assert "reports version 2 as LOADING, not AVAILABLE" in capsys.readouterr().err
    assert "canary" not in config.read_text()


def test_promote_refuses_a_version_the_server_does_not_know(config, serve, capsys):
    text = config.read_text().replace("versions: 1", "versions: 1\n      versions: 2")
    config.write_text(text)  # served by the policy, but this server never loaded it
    target = serve(ScriptedModelService({"tiny": {1}}))
    assert main(["config", "promote", "tiny", "--label", "canary", "--version", "2", "--config", str(config),
                 "--server", target]) == 1
    assert "reports version 2 as unknown" in capsys.readouterr().err


def test_reload_refusal_is_reported_with_the_server_message(config, serve, capsys):
    target = serve(ScriptedModelService({"tiny": {1}}, refuse="label points at unavailable version"))
    before = config.read_text()
    assert main(["config", "promote", "tiny", "--label", "canary", "--version", "1", "--config", str(config),
                 "--server", target]) == 1
    assert "reload refused: label points at unavailable version" in capsys.readouterr().err
    assert config.read_text() == before and not config.with_name("models.config.journal").exists()
