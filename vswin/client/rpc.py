"""The drivers' I/O: a channel, its unary methods, and calls that follow the core's retry schedule.

`Rpc` blocks (the sync client, the bench, rollout.ServerControl); `AsyncRpc`
awaits (the asyncio client). Both only wait and send: when to try again and
what an error means is `core.Attempts`'s decision.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
import grpc.aio

from vswin.client.channel import ChannelSettings, unary_method
from vswin.client.core import Attempts, Call
from vswin.client.errors import from_rpc_error


class Rpc:
    """A blocking channel to one server."""

    grpc_module = grpc

    def __init__(self, settings: ChannelSettings) -> None:
        self.target = settings.target
        self.channel = settings.open(self.grpc_module)
        self._methods: dict[tuple[str, type | None], Callable] = {}

    def method(self, path: str, response_type: type | None = None) -> Callable:
        """The unary method `path` (cached); answers parse as `response_type`, or stay bytes when None."""
        key = (path, response_type)
        if key not in self._methods:
            self._methods[key] = unary_method(self.channel, path, response_type)
        return self._methods[key]

    def call(self, call: Call, attempts: Attempts) -> object:
        """Make `call`, trying again while `attempts` allows; raises the ClientError of the last failure."""
        method = self.method(call.path, call.response_type)
        while True:
            try:
                return method(call.request, timeout=attempts.remaining())
            except grpc.RpcError as err:
                time.sleep(attempts.failed(from_rpc_error(err, call.path, self.target)))

    def close(self) -> None:
        self.channel.close()


class AsyncRpc(Rpc):
    """The grpc.aio twin of Rpc: create it inside a running event loop."""

    grpc_module = grpc.aio

    async def call(self, call: Call, attempts: Attempts) -> object:  # type: ignore[override]
        method = self.method(call.path, call.response_type)
        while True:
            try:
                return await method(call.request, timeout=attempts.remaining())
            except grpc.aio.AioRpcError as err:
                await asyncio.sleep(attempts.failed(from_rpc_error(err, call.path, self.target)))

    async def close(self) -> None:  # type: ignore[override]
        await self.channel.close()
