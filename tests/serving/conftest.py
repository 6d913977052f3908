"""Fixtures for the server's tests: a tiny SavedModel built once, base paths, in-process servers, stubs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from tests.serving import savedmodels


@pytest.fixture(scope="session")
def tiny_version(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One version directory of the tiny SavedModel (copied, never served in place)."""
    return savedmodels.save_tiny_model(tmp_path_factory.mktemp("tiny") / "1")


@pytest.fixture(scope="session")
def tiny_version_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second SavedModel with other weights, so versions answer differently."""
    return savedmodels.save_tiny_model(tmp_path_factory.mktemp("tiny_b") / "1", seed=7)


@pytest.fixture()
def model_base(tmp_path: Path, tiny_version: Path) -> Path:
    """BASE/tiny with version 1."""
    base = tmp_path / "tiny"
    savedmodels.copy_version(tiny_version, base, 1)
    return base


@pytest.fixture()
def start_server() -> Iterator[Callable[..., "ModelServer"]]:
    """start_server(config, **options) -> a started in-process ModelServer on 127.0.0.1; stopped after the test."""
    from vswin.serving.server import ModelServer, ServerOptions

    servers: list[ModelServer] = []

    def start(config, **options) -> ModelServer:
        options.setdefault("file_system_poll_wait_seconds", 0)
        options.setdefault("max_num_load_retries", 0)  # a failed load is END at once unless a test asks for retries
        server = ModelServer(ServerOptions(model_config=config, port=0, host="127.0.0.1", **options))
        servers.append(server)
        server.start()
        return server

    yield start
    # Last started, first stopped: each stop puts back the process-wide XLA switch it found at start,
    # so stopping in start order would leave a second server's view (XLA off) to the tests after.
    for server in reversed(servers):
        server.stop(grace=5)


def channel_to(server) -> grpc.Channel:
    return grpc.insecure_channel(
        f"127.0.0.1:{server.port}",
        options=[("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)],
    )


@pytest.fixture()
def stubs() -> Iterator[Callable]:
    """stubs(server) -> (PredictionServiceStub, ModelServiceStub) on a channel closed after the test."""
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    channels: list[grpc.Channel] = []

    def make(server):
        channel = channel_to(server)
        channels.append(channel)
        return (
            prediction_service_pb2_grpc.PredictionServiceStub(channel),
            model_service_pb2_grpc.ModelServiceStub(channel),
        )

    yield make
    for channel in channels:
        channel.close()



@pytest.fixture(scope="session")
def spinner_version(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SavedModel whose `spin` signature loops n[0] times (see savedmodels.Spinner)."""
    return savedmodels.save_spinner_model(tmp_path_factory.mktemp("spinner") / "1")


@pytest.fixture()
def spinner_base(tmp_path: Path, spinner_version: Path) -> Path:
    """BASE/spinner with version 1."""
    base = tmp_path / "spinner"
    savedmodels.copy_version(spinner_version, base, 1)
    return base
