"""The HTTP server on --rest_api_port: TF Serving's REST API under /v1/, Prometheus metrics at their path.

The stdlib HTTPServer with its connections handled by a fixed pool of --rest_api_num_threads
threads (TF Serving's executor), so a burst of connections queues instead of starting a thread
each. One request per connection (`Connection: close`), so a kept-alive client never holds a
thread; a connection idle for IDLE_TIMEOUT_S is dropped. Request bodies come with Content-Length
or chunked, optionally gzip-compressed (as TF Serving's libevent server accepts them), and larger
than `max_body_bytes` (after decompression) is RESOURCE_EXHAUSTED (HTTP 429) without reading it.
"""

from __future__ import annotations

import logging
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import grpc
from prometheus_client import CONTENT_TYPE_LATEST

from vswin.serving import ports, rest
from vswin.serving.errors import ServingError, invalid_argument

if TYPE_CHECKING:
    from vswin.serving.metrics import ServerMetrics

log = logging.getLogger(__name__)

IDLE_TIMEOUT_S = 60.0  # a connection that sends nothing for this long is closed (frees its thread)
JSON_CONTENT_TYPE = "application/json"
_LINE_LIMIT = 65536


class HttpServer:
    """Serves a RestApi, and the server's metrics when monitoring is on, on one port."""

    def __init__(
        self,
        api: rest.RestApi,
        max_body_bytes: int,
        threads: int,
        metrics: ServerMetrics | None = None,
        metrics_path: str = "",
    ) -> None:
        if threads < 1:
            raise ValueError(f"the REST API needs at least one thread, got {threads}")
        self.api = api
        self.max_body_bytes = max_body_bytes
        self.threads = threads
        self.metrics = metrics
        self.metrics_path = metrics_path
        self._server: _PooledHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int | None:
        """The port listened on (useful after start(..., 0)); None when not running."""
        return None if self._server is None else self._server.server_address[1]

    def start(self, host: str, port: int) -> int:
        """Listen on host:port and serve in the background; OSError naming the address if it is taken."""
        if self._server is not None:
            raise RuntimeError("the HTTP server is already running")
        try:
            self._server = _PooledHTTPServer((host, port), _handler(self), self.threads)
        except OSError as err:
            raise ports.http_bind_failure(host, port, ports.reason(err), err.errno) from err
        self._thread = threading.Thread(target=self._server.serve_forever, name="http-accept", daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        """Stop accepting, answer the requests already accepted, free the port (no-op when not running)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join()
        self._server = self._thread = None


class _PooledHTTPServer(HTTPServer):
    """HTTPServer handing each accepted connection to a fixed thread pool."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], threads: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rest")  # threads start on demand
        super().__init__(address, handler)  # binds; server_close() on failure

    def process_request(self, request, client_address) -> None:
        self._pool.submit(self._process, request, client_address)

    def _process(self, request, client_address) -> None:
        try:
            self.finish_request(request, client_address)
        except OSError as err:  # the client went away
            log.debug("HTTP connection from %s failed: %s", client_address, err)
        except Exception:
            log.exception("HTTP request from %s failed", client_address)
        finally:
            self.shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=True)


def _handler(server: HttpServer) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to `server`."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # for Expect: 100-continue (curl, for large bodies)
        timeout = IDLE_TIMEOUT_S

        def do_GET(self) -> None:  # noqa: N802 -- http.server's naming
            self.close_connection = True
            path = urlsplit(self.path).path
            if server.metrics is not None and path == server.metrics_path:
                self._send(HTTPStatus.OK, server.metrics.render(), CONTENT_TYPE_LATEST)
            elif rest.API_PATH.fullmatch(path):
                try:
                    body = self._body()
                except ServingError as err:
                    self._send(*rest.error(err), JSON_CONTENT_TYPE)
                    return
                self._send(*server.api.handle(self.command, path, body), JSON_CONTENT_TYPE)
            else:
                where = f" and metrics at {server.metrics_path}" if server.metrics is not None else ""
                not_found = ServingError(grpc.StatusCode.NOT_FOUND, f"{path}: the REST API is under /v1/{where}")
                self._send(*rest.error(not_found), JSON_CONTENT_TYPE)

        # Other methods get TF Serving's "Malformed request" from the API (or 404 off its paths).
        do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET  # noqa: N815

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _body(self) -> bytes:
            limit = server.max_body_bytes
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                body = self._chunked(limit)
            else:
                length = self.headers.get("Content-Length", "0")
                try:
                    size = int(length)
                except ValueError:
                    raise invalid_argument(f"Content-Length {length!r} is not a number") from None
                if size < 0:
                    raise invalid_argument(f"Content-Length {length!r} is negative")
                _check_size(size, limit)
                body = self.rfile.read(size)
                if len(body) < size:
                    raise invalid_argument(f"the request body ended after {len(body)} of {size} bytes")
            if "gzip" in self.headers.get("Content-Encoding", "").lower():
                body = _gunzip(body, limit)
            return body

        def _chunked(self, limit: int) -> bytes:
            parts, size = [], 0
            while True:
                line = self.rfile.readline(_LINE_LIMIT)
                try:
                    length = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise invalid_argument(f"malformed chunk size line {line[:80]!r} in a chunked body") from None
                if length == 0:
                    break
                size += length
                _check_size(size, limit)
                parts.append(self.rfile.read(length))
                self.rfile.readline(_LINE_LIMIT)
            while self.rfile.readline(_LINE_LIMIT) not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(parts)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 -- not worth a line per request
            log.debug("%s %s", self.address_string(), format % args)

    return Handler


def _check_size(size: int, limit: int) -> None:
    if size > limit:
        raise ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                           f"request body of {size} bytes is larger than the limit of {limit} bytes "
                           "(--grpc_max_message_size, which bounds REST bodies too)")  # fmt: skip


def _gunzip(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as err:
        raise invalid_argument(f"the request body is not valid gzip (Content-Encoding: gzip): {err}") from err
    if len(data) > limit:
        raise ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                           f"the gzip request body inflates to more than the limit of {limit} bytes "
                           "(--grpc_max_message_size, which bounds REST bodies too)")  # fmt: skip
    if not inflater.eof:
        raise invalid_argument("the gzip request body is truncated")
    return data
