"""The client's protocol logic without I/O: what to send, how long to wait, what an answer means.

The sync client (client.py), the asyncio client (aio.py), the bench's gRPC
transport and rollout.ServerControl are drivers: each owns a channel and the
waiting (blocking, awaiting), and asks this module for requests, the retry
schedule of a call, the cut of a batch into requests and how to cut again when
the server refuses a request as too large, and for the meaning of responses
and errors. So the protocol is written once and the drivers stay a few lines.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import numpy as np

from vswin import contract
from vswin.client import protos
from vswin.client import requests as rq
from vswin.client.channel import ChannelSettings, RetryPolicy
from vswin.client.errors import RETRYABLE, ClientError, DeadlineExceeded, InvalidInput
from vswin.client.metadata import ModelInfo, parse_metadata, with_export

log = logging.getLogger("vswin.client")

Clock = Callable[[], float]


class Attempts:
    """The retry schedule of one call: one deadline covers every attempt, and only RETRYABLE codes
    (UNAVAILABLE, RESOURCE_EXHAUSTED) are tried again, after RetryPolicy's backoff.

    A driver asks `remaining()` for each attempt's timeout and, when the
    attempt fails, `failed(error)` for how long to wait before the next one;
    both raise when there is to be no next attempt.
    """

    def __init__(self, call: str, target: str, timeout: float, retry: RetryPolicy, clock: Clock = time.monotonic):
        self.call = call
        self.target = target
        self.retry = retry
        self.clock = clock
        self.deadline = clock() + timeout
        self.attempt = 0

    def remaining(self) -> float:
        """Seconds left for the next attempt; DeadlineExceeded when there are none."""
        left = self.deadline - self.clock()
        if left <= 0:
            raise DeadlineExceeded(f"{self.call} on {self.target}: deadline passed after {self.attempt} attempt(s)",
                                   code=grpc.StatusCode.DEADLINE_EXCEEDED)  # fmt: skip
        return left

    def failed(self, error: ClientError) -> float:
        """Seconds to wait before trying again after `error`; raises `error` when it is final (not retryable,
        attempts used up, or the wait would pass the deadline)."""
        self.attempt += 1
        if error.code not in RETRYABLE or self.attempt >= self.retry.max_attempts:
            raise error from None
        delay = self.retry.delay(self.attempt - 1)
        if self.clock() + delay >= self.deadline:
            raise error from None
        log.warning("%s; retry %d/%d in %.2fs", error, self.attempt, self.retry.max_attempts - 1, delay)
        return delay


def smaller_batch(error: ClientError, sent: int) -> int | None:
    """The request size to try again with after a request of `sent` rows failed with `error`, or None when the
    failure was not about its size.

    A batcher refuses a request larger than its max_batch_size with
    INVALID_ARGUMENT and TF Serving's message naming the limit
    (contract.BATCH_TOO_LARGE; `vswin serve` says the same): the limit is the
    answer, or half the request should a server name one that is not smaller.
    """
    found = contract.parse_batch_too_large(error.details or "")
    if error.code != grpc.StatusCode.INVALID_ARGUMENT or found is None or sent <= 1:
        return None
    limit = found[1]
    return max(1, limit if limit < sent else sent // 2)


class BatchPlan:
    """Rows [0, rows) cut into requests of at most `limit` rows, with their results kept in row order.

    Parts are cut when taken, so a limit learned from a refusal applies to
    everything not yet sent; a refused part goes back to be cut smaller.
    """

    def __init__(self, rows: int, limit: int) -> None:
        self.limit = limit
        self._todo: list[tuple[int, int]] = [(0, rows)] if rows else []
        self._results: dict[int, object] = {}

    @property
    def pending(self) -> bool:
        return bool(self._todo)

    def take(self, count: int | None = None) -> list[slice]:
        """Up to `count` parts (all that is left when None), in row order."""
        parts: list[slice] = []
        while self._todo and (count is None or len(parts) < count):
            start, stop = self._todo.pop(0)
            end = min(stop, start + self.limit)
            parts.append(slice(start, end))
            if end < stop:
                self._todo.insert(0, (end, stop))
        return parts

    def done(self, part: slice, result: object) -> None:
        self._results[part.start] = result

    def again(self, part: slice, limit: int) -> None:
        """Send `part` again, in requests of at most `limit` rows (and everything else too)."""
        self.limit = min(self.limit, limit)
        self._todo.append((part.start, part.stop))
        self._todo.sort()

    def results(self) -> list:
        return [self._results[start] for start in sorted(self._results)]


@dataclass(frozen=True)
class Call:
    """One unary call for a driver to make: the method's path, the request, the response's class."""

    path: str
    request: object
    response_type: type


class ClientCore:
    """One model on one server as requests and answers; the drivers add the channel.

    Holds the call settings (model, version or label, signature, deadline,
    retries, batch limit) and the metadata cache: ModelInfo per signature, and
    the export's serving metadata per version (read once per version from its
    `metadata` signature).
    """

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
        self._info: dict[str, ModelInfo] = {}
        self._exports: dict[int, ModelInfo] = {}  # version -> a ModelInfo carrying that version's export metadata

    @property
    def target(self) -> str:
        return self.settings.target

    # -- calls and errors ---------------------------------------------------------------------------------

    def attempts(self, call: Call, timeout: float | None = None) -> Attempts:
        return Attempts(call.path, self.target, timeout or self.timeout, self.retry)

    # -- model info: GetModelMetadata, then the export's `metadata` signature once per version ----------

    def cached_info(self, signature: str) -> ModelInfo | None:
        return self._info.get(signature)

    def metadata_call(self, signature: str) -> Call:
        return Call(protos.GET_MODEL_METADATA[0], rq.metadata_request(self.model, signature),
                    protos.GetModelMetadataResponse)  # fmt: skip

    def read_info(self, response: protos.GetModelMetadataResponse, signature: str) -> ModelInfo:
        """ModelInfo from GetModelMetadata, with the export metadata when this version's is known already."""
        info = parse_metadata(response, signature)
        known = self._exports.get(info.version)
        if known is not None:
            info = dataclasses.replace(info, export=known.export, preprocessing=known.preprocessing)
        return info

    def export_call(self, info: ModelInfo) -> Call | None:
        """The `metadata` signature's Predict for `info`'s version, None when known or the export has none."""
        if info.version in self._exports or contract.METADATA not in info.signatures:
            return None
        model = rq.ModelRef(self.model.name, version=info.version)  # the version just described, not the latest now
        request = rq.predict_request(model, contract.METADATA, {contract.METADATA_INPUT: np.zeros(1, np.int32)})
        return Call(protos.PREDICT[0], request, protos.PredictResponse)

    def read_export(self, info: ModelInfo, response: protos.PredictResponse | None) -> ModelInfo:
        """`info` with its export metadata (from the `metadata` Predict's `response`, None for exports without
        the signature), cached for the version and the signature."""
        if response is not None:
            outputs = rq.predict_outputs(response)
            if contract.METADATA_OUTPUT not in outputs:
                raise InvalidInput(f"signature {contract.METADATA!r} returned {sorted(outputs)}, "
                                   f"not {contract.METADATA_OUTPUT!r}")  # fmt: skip
            info = with_export(info, outputs[contract.METADATA_OUTPUT].reshape(-1)[0])
            self._exports[info.version] = info
        self._info[info.signature] = info
        return info

    # -- Predict --------------------------------------------------------------------------------------------

    def predict_call(self, inputs: dict[str, np.ndarray], signature: str | None = None,
                     output_filter: list[str] | None = None) -> Call:  # fmt: skip
        request = rq.encode_predict_request(self.model, signature or self.signature, inputs, output_filter)
        return Call(protos.PREDICT[0], request, protos.PredictResponse)

    def features_call(self, views: np.ndarray, info: ModelInfo) -> Call:
        return self.predict_call({info.input.name: views}, output_filter=[contract.FEATURES])

    def read_features(self, response: protos.PredictResponse) -> np.ndarray:
        outputs = rq.predict_outputs(response)
        if contract.FEATURES not in outputs:
            raise InvalidInput(f"signature {self.signature!r} returned {sorted(outputs)}, not {contract.FEATURES!r}")
        return outputs[contract.FEATURES]

    def classify_call(self, views: np.ndarray, info: ModelInfo) -> Call:
        return self.predict_call({info.input.name: views}, signature=contract.CLASSIFY)

    def status_call(self) -> Call:
        return Call(protos.GET_MODEL_STATUS[0], rq.status_request(self.model), protos.GetModelStatusResponse)

    # -- batches --------------------------------------------------------------------------------------------

    def plan(self, rows: int) -> BatchPlan:
        return BatchPlan(rows, self.max_batch)

    def refused(self, plan: BatchPlan, part: slice, error: ClientError) -> None:
        """A part of `plan` failed with `error`: plan it again smaller if the server said it was too large
        (and remember the limit for later calls), else raise `error`."""
        sent = part.stop - part.start
        limit = smaller_batch(error, sent)
        if limit is None:
            raise error
        self.max_batch = min(self.max_batch, limit)
        log.warning("server refused a batch of %d (%s); sending at most %d per request", sent, error.details,
                    self.max_batch)  # fmt: skip
        plan.again(part, self.max_batch)
