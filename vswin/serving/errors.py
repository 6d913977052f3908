"""The one exception the server's layers raise: a gRPC status code and TF Serving's wording.

The services turn it into the RPC's status; nothing below them knows about
gRPC contexts, so the manager and servables stay testable on their own.
"""

from __future__ import annotations

import grpc


class ServingError(Exception):
    """A request or config that failed with `code` (a grpc.StatusCode) and a message saying what to fix."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


def not_found(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


def invalid_argument(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def failed_precondition(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.FAILED_PRECONDITION, message)


def resource_exhausted(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, message)


def deadline_exceeded(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, message)


def status_code_from_number(number: int) -> grpc.StatusCode:
    """The grpc.StatusCode with canonical number `number` (TensorFlow's error codes share the numbering)."""
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code
    return grpc.StatusCode.UNKNOWN
