"""How every driver reaches a server: channel settings (options, TLS), unary methods, the retry policy.

Retries are done by the client, not by gRPC's service-config retry policy:
gRPC only retries a call whose request fits its per-call retry buffer
(`grpc.per_rpc_retry_buffer_size`, 256 KiB by default), and one 32x224x224x3
clip is 4.8 MB, so gRPC would silently never retry a Predict.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from types import ModuleType

import grpc

INT32_MAX = 2**31 - 1
# Target schemes that can name several servers: spread calls over all of them.
_MULTI_ADDRESS = ("dns:", "ipv4:", "ipv6:")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter for UNAVAILABLE and RESOURCE_EXHAUSTED.

    Attempt n (0-based) that fails waits uniform(d/2, d) with
    d = min(max_backoff, initial_backoff * multiplier**n) seconds; the call's
    deadline bounds the total, retries included.
    """

    max_attempts: int = 5
    initial_backoff: float = 0.1
    max_backoff: float = 5.0
    multiplier: float = 2.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.initial_backoff < 0 or self.max_backoff < self.initial_backoff or self.multiplier < 1:
            raise ValueError(f"bad backoff settings: {self}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt` (0-based)."""
        cap = min(self.max_backoff, self.initial_backoff * self.multiplier**attempt)
        return self.rng.uniform(cap / 2, cap)


NO_RETRY = RetryPolicy(max_attempts=1)


@dataclass(frozen=True)
class ChannelSettings:
    """How to reach the server: target, TLS, message limits, keepalive, load balancing.

    `target` is anything grpc accepts ("host:port", "dns:///name:port" for several
    replicas behind one name). `lb_policy` defaults to round_robin for dns:///
    targets (spread requests over every resolved address) and to gRPC's
    pick_first otherwise (also round_robin for "ipv4:a:p1,b:p2" address lists). TLS is on when `tls` is true or any certificate is
    given; certificates are PEM bytes or paths.
    """

    target: str
    tls: bool = False
    root_certificates: bytes | str | Path | None = None
    client_certificate: bytes | str | Path | None = None
    client_key: bytes | str | Path | None = None
    server_name: str | None = None
    max_message_bytes: int = INT32_MAX
    keepalive_time_ms: int = 60_000
    keepalive_timeout_ms: int = 20_000
    lb_policy: str | None = None
    extra_options: tuple[tuple[str, object], ...] = ()

    def options(self) -> list[tuple[str, object]]:
        options: list[tuple[str, object]] = [
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.keepalive_time_ms", self.keepalive_time_ms),
            ("grpc.keepalive_timeout_ms", self.keepalive_timeout_ms),
        ]
        lb_policy = self.lb_policy or ("round_robin" if self.target.startswith(_MULTI_ADDRESS) else None)
        if lb_policy:
            options.append(("grpc.lb_policy_name", lb_policy))
        if self.server_name:
            options.append(("grpc.ssl_target_name_override", self.server_name))
        return options + list(self.extra_options)

    @property
    def secure(self) -> bool:
        return self.tls or any(c is not None for c in (self.root_certificates, self.client_certificate))

    def credentials(self) -> grpc.ChannelCredentials:
        if (self.client_certificate is None) != (self.client_key is None):
            raise ValueError("client_certificate and client_key go together (mutual TLS needs both)")
        return grpc.ssl_channel_credentials(
            root_certificates=_pem(self.root_certificates),
            private_key=_pem(self.client_key),
            certificate_chain=_pem(self.client_certificate),
        )

    def open(self, grpc_module: ModuleType = grpc) -> grpc.Channel:
        """A channel to `target` with these settings; `grpc_module` is `grpc` or `grpc.aio`."""
        if self.secure:
            return grpc_module.secure_channel(self.target, self.credentials(), options=self.options())
        return grpc_module.insecure_channel(self.target, options=self.options())


def serialize(request: bytes | object) -> bytes:
    """Request serializer: protobuf messages (the client's or TensorFlow's), pre-encoded requests as they are."""
    return request if isinstance(request, bytes) else request.SerializeToString()


def unary_method(channel: grpc.Channel, path: str, response_type: type | None = None) -> Callable:
    """A unary-unary callable for the method `path` on `channel`; answers parse as `response_type`
    (any protobuf message class), or stay bytes when it is None."""
    parse = response_type.FromString if response_type is not None else None
    return channel.unary_unary(path, request_serializer=serialize, response_deserializer=parse)


def _pem(value: bytes | str | Path | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return Path(value).read_bytes()
