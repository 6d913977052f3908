"""Fixtures for the client tests: an in-process fake TF Serving on a free port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.client.fake_serving import FakeModel, FakeServer


@pytest.fixture()
def fake_server(free_port: int) -> Iterator[FakeServer]:
    server = FakeServer(free_port, FakeModel()).start()
    yield server
    server.stop()
