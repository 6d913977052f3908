"""The server's ports: how a port that cannot be bound is reported, and a check that needs no TensorFlow.

`vswin serve` checks its ports before it imports TensorFlow and loads models, so a
port another process listens on fails the command in a second rather than after
TensorFlow's start-up; the server's own binds check again (the port may be taken
in between, and embedded servers skip the early check).
"""

from __future__ import annotations

import errno
import socket


def bind_error(host: str, port: int) -> OSError | None:
    """The error binding host:port as the server does (SO_REUSEADDR, as gRPC and http.server), None if it binds."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            return err
    return None


def reason(err: OSError) -> str:
    """An OSError in the kernel's words, lower case ("address already in use")."""
    return (err.strerror or str(err)).lower()


def grpc_bind_failure(host: str, port: int, why: str, code: int = errno.EADDRINUSE) -> OSError:
    """The error for a gRPC port that cannot be bound."""
    return OSError(code, f"cannot listen on {host}:{port}: {why}")


def http_bind_failure(host: str, port: int, why: str, code: int | None = errno.EADDRINUSE) -> OSError:
    """The error for a REST API / metrics port that cannot be bound."""
    return OSError(code, f"cannot serve HTTP (REST API, metrics) on {host}:{port}: {why}")


def check_not_taken(host: str, port: int, rest_api_port: int = 0) -> None:
    """OSError naming the address if another process listens on the gRPC `port` or on `rest_api_port`.

    Port 0 (any free port) is not checked; problems other than a taken address
    (an unknown host, a privileged port) are left to the server's own binds.
    """
    for number, failure in ((port, grpc_bind_failure), (rest_api_port, http_bind_failure)):
        err = bind_error(host, number) if number else None
        if err is not None and err.errno == errno.EADDRINUSE:
            raise failure(host, number, reason(err))
