"""What the sync and asyncio clients share: their arguments, the checks on them, the channel and its methods."""

from __future__ import annotations

from types import ModuleType

from vswin import contract
from vswin.client import protos
from vswin.client import requests as rq
from vswin.client.channel import ChannelSettings, RetryPolicy
from vswin.client.metadata import ModelInfo


class ClientBase:
    """Opens the channel with the subclass's `grpc_module` (`grpc` or `grpc.aio`); `_lock` guards the
    metadata cache and is a `lock_type` (threading.Lock or asyncio.Lock)."""

    grpc_module: ModuleType
    lock_type: type

    def __init__(
        self,
        target: str,
        model: str,
        version: int | None = None,
        label: str | None = None,
        signature: str = contract.SERVING_DEFAULT,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        max_batch: int = contract.MAX_BATCH_SIZE,
        **channel: object,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive seconds, got {timeout}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.model = rq.ModelRef(model, version, label)
        self.signature = signature
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.settings = ChannelSettings(target=target, **channel)
        self.max_batch = max_batch
        self._channel = self.settings.open(self.grpc_module)
        self._methods = {
            path: self._channel.unary_unary(
                path, request_serializer=rq.serialize, response_deserializer=resp.FromString
            )
            for path, _, resp in (protos.PREDICT, protos.GET_MODEL_METADATA, protos.GET_MODEL_STATUS)
        }
        self._info: dict[str, ModelInfo] = {}
        self._lock = self.lock_type()

    @property
    def target(self) -> str:
        return self.settings.target
