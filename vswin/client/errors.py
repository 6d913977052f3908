"""The client's exceptions: what went wrong, the gRPC code when there is one, and the server's message.

Callers catch `ModelNotFound`, `InvalidInput`, `ServerUnavailable`,
`DeadlineExceeded` (or their base `ClientError`) instead of raw
`grpc.RpcError`; `VideoError` and `ImageError` (base `FileError`) are for
input files that can't be read.
"""

from __future__ import annotations

from pathlib import Path

import grpc


class VideoSwinClientError(Exception):
    """Base of every error raised by vswin.client."""


class ClientError(VideoSwinClientError):
    """A request that failed: `code` is the grpc.StatusCode (None if it failed before reaching a server)."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None, details: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.details = details


class ModelNotFound(ClientError):
    """The server has no such model, version or label (NOT_FOUND)."""


class InvalidInput(ClientError):
    """The request does not fit the signature: dtype, rank, shape or input name (INVALID_ARGUMENT)."""


class ServerUnavailable(ClientError):
    """No server answered, or it shed load (UNAVAILABLE, RESOURCE_EXHAUSTED) and retries ran out."""


class DeadlineExceeded(ClientError):
    """The call's deadline passed before an answer (DEADLINE_EXCEEDED)."""


class ServerError(ClientError):
    """Any other failure the server reported (INTERNAL, UNIMPLEMENTED, FAILED_PRECONDITION, ...)."""


class FileError(VideoSwinClientError):
    """An input file that cannot be read: names the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class VideoError(FileError):
    """A video that cannot be opened or decoded."""


class ImageError(FileError):
    """An image that cannot be opened or decoded."""


_BY_CODE: dict[grpc.StatusCode, type[ClientError]] = {
    grpc.StatusCode.NOT_FOUND: ModelNotFound,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidInput,
    grpc.StatusCode.UNAVAILABLE: ServerUnavailable,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ServerUnavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})


def from_rpc_error(error: grpc.RpcError, call: str, target: str) -> ClientError:
    """Turn a grpc.RpcError into the matching ClientError, naming the call and the server."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = (error.details() if hasattr(error, "details") else "") or ""
    cls = _BY_CODE.get(code, ServerError)
    return cls(f"{call} on {target} failed with {code.name}: {details}", code=code, details=details)
