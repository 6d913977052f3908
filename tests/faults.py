"""Fault injection for the real in-process server: a gRPC server interceptor (ServerOptions.interceptors).

Rules fail a method's calls with a status code n times (or every n-th
call), hold them for a while, or answer them with a canned response; every
call is recorded with its time and request, so tests can count attempts,
read what the client sent and measure the gaps between retries. Rules can
be limited to one signature (`request.model_spec.signature_name`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from vswin import contract

Action = Callable[[object, grpc.ServicerContext], object]


@dataclass(frozen=True)
class Seen:
    """One call the server received: method name (e.g. 'Predict'), when, the request, its signature ('' if none)."""

    method: str
    time: float
    request: object
    signature: str


@dataclass
class _Rule:
    method: str
    action: Action
    signature: str | None
    times: int | None
    every: int
    final: bool  # ends the call (fails or answers it): later rules do not see the call
    matched: int = field(default=0)

    def applies(self, method: str, signature: str) -> bool:
        if method != self.method or (self.signature is not None and signature != self.signature):
            return False
        if self.times is not None and self.times <= 0:
            return False
        self.matched += 1
        if self.matched % self.every:
            return False
        if self.times is not None:
            self.times -= 1
        return True


def signature_of(request: object) -> str:
    spec = getattr(request, "model_spec", None)
    if spec is None or not hasattr(spec, "signature_name"):
        return ""
    return spec.signature_name or contract.SERVING_DEFAULT


class Faults(grpc.ServerInterceptor):
    """The interceptor: add rules with fail/delay/answer, read `seen`, `reset()` between tests."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.expired = 0
        self.peak: dict[str, int] = {}  # most calls of a method in the server at once
        self._active: dict[str, int] = {}
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self._released = threading.Event()

    # -- rules ------------------------------------------------------------------------------------------

    def fail(self, method: str, code: grpc.StatusCode, message: str | None = None, times: int | None = 1,
             every: int = 1, signature: str | None = None) -> None:  # fmt: skip
        """Abort the next `times` matching calls (None: all; every `every`-th one) with `code` and `message`."""
        text = message if message is not None else f"injected {code.name}"

        def abort(request: object, context: grpc.ServicerContext) -> object:
            context.abort(code, text)

        self._add(_Rule(method, abort, signature, times, every, final=True))

    def delay(self, method: str, seconds: float, times: int | None = None, signature: str | None = None) -> None:
        """Hold matching calls `seconds` before serving them (cut short by `release()`; `expired` counts the
        holds that ran their full time)."""

        def wait(request: object, context: grpc.ServicerContext) -> None:
            if not self._released.wait(seconds):
                with self._lock:
                    self.expired += 1

        self._add(_Rule(method, wait, signature, times, 1, final=False))

    def answer(self, method: str, respond: Callable[[object], object], times: int | None = None,
               signature: str | None = None) -> None:  # fmt: skip
        """Answer matching calls with `respond(request)` (a response message) instead of the server's."""
        self._add(_Rule(method, lambda request, context: respond(request), signature, times, 1, final=True))

    def _add(self, rule: _Rule) -> None:
        with self._lock:
            self._rules.append(rule)

    def release(self) -> None:
        """End every delay now and from now on."""
        self._released.set()

    def reset(self) -> None:
        """No rules, nothing seen, delays armed again."""
        self.release()
        with self._lock:
            self._rules.clear()
            self.seen.clear()
            self.expired = 0
            self.peak.clear()
        self._released = threading.Event()

    # -- what the server saw -----------------------------------------------------------------------------

    def calls(self, method: str, signature: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.method == method and (signature is None or s.signature == signature)]

    def requests(self, method: str, signature: str | None = None) -> list[object]:
        return [s.request for s in self.calls(method, signature)]

    # -- the interceptor -----------------------------------------------------------------------------------

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method.rsplit("/", 1)[-1]
        serve = handler.unary_unary

        def intercepted(request, context):
            signature = signature_of(request)
            actions = []
            with self._lock:
                self.seen.append(Seen(method, time.monotonic(), request, signature))
                self._active[method] = self._active.get(method, 0) + 1
                self.peak[method] = max(self.peak.get(method, 0), self._active[method])
                for rule in self._rules:
                    if rule.applies(method, signature):
                        actions.append(rule.action)
                        if rule.final:
                            break
            try:
                for action in actions:
                    response = action(request, context)
                    if response is not None:
                        return response
                return serve(request, context)
            finally:
                with self._lock:
                    self._active[method] -= 1

        return handler._replace(unary_unary=intercepted)
