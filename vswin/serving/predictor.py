"""The one prediction path of the gRPC and REST APIs: version lookup, request checks, limits, deadline, batching, metrics.

Each API decodes its own wire format into numpy arrays; everything after that
(which version answers, the checks against the SignatureDef, the size limits,
the deadline, the batch scheduler, the request metrics, the status of every
failure) happens here, so the two APIs cannot drift apart.

Work is refused as early as it can be: a passed deadline before anything
else; then, when the API can say what its inputs are before decoding them
(gRPC's TensorProtos declare dtype and shape), unknown or internal
signatures, wrong inputs and oversized requests before any tensor is
decoded; and the deadline again right before the model runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
import numpy as np
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import model_pb2

from vswin.serving.errors import ServingError, deadline_exceeded, invalid_argument
from vswin.serving.inflight import InFlight, RunningRequest
from vswin.serving.limits import RequestLimits
from vswin.serving.manager import ModelManager
from vswin.serving.servable import DEFAULT_SIGNATURE, Servable
from vswin.serving.tensors import DeclaredTensor

if TYPE_CHECKING:
    from vswin.serving.batching import BatchScheduler
    from vswin.serving.metrics import ServerMetrics

log = logging.getLogger(__name__)

# Turns a request's payload into named arrays, given the SignatureDef it is for (the REST API needs the
# input dtypes to read JSON; gRPC's TensorProtos carry their own).
InputDecoder = Callable[[meta_graph_pb2.SignatureDef], Mapping[str, np.ndarray]]
# What the request's inputs say they are, before decoding (gRPC); raises ServingError for malformed ones.
InputDeclaration = Callable[[], Mapping[str, DeclaredTensor]]


@dataclass
class Prediction:
    """What answered a request and what it returned."""

    name: str
    version: int
    signature_name: str
    outputs: dict[str, np.ndarray]


class Predictor:
    """Runs requests on the manager's servables, through the batch scheduler when batching is on.

    `limits` defaults to the server's: the row limit only without batching (the
    batcher's max_batch_size bounds rows otherwise, as in TF Serving).
    `in_flight` tracks running requests for the shutdown drain.
    """

    def __init__(
        self,
        manager: ModelManager,
        scheduler: BatchScheduler | None = None,
        metrics: ServerMetrics | None = None,
        limits: RequestLimits | None = None,
        in_flight: InFlight | None = None,
    ) -> None:
        self.manager = manager
        self.scheduler = scheduler
        self.metrics = metrics
        if limits is None:
            limits = RequestLimits(max_rows=0) if scheduler is not None else RequestLimits()
        self.limits = limits
        self.in_flight = in_flight or InFlight()

    def predict(
        self,
        spec: model_pb2.ModelSpec,
        decode: InputDecoder,
        output_filter: list[str],
        timeout: float | None,
        declare: InputDeclaration | None = None,
    ) -> Prediction:
        """Run the request `spec` names; every failure is a ServingError (INTERNAL for the unexpected).

        `timeout` is the seconds left before the caller's deadline (None: no deadline). `declare`,
        when the API has it, gives the inputs' dtypes and shapes without decoding them.
        """
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        signature_name = spec.signature_name or DEFAULT_SIGNATURE
        version: int | None = None
        status = grpc.StatusCode.OK
        try:
            _remaining(deadline, "before the request started")
            with self.manager.servable(spec) as servable:
                version = servable.version
                outputs = self._predict(servable, signature_name, decode, declare, output_filter, deadline)
                return Prediction(servable.name, servable.version, signature_name, outputs)
        except ServingError as err:
            status = err.code
            raise
        except Exception as err:  # never let a request take the server down
            status = grpc.StatusCode.INTERNAL
            log.exception("Predict failed")
            raise ServingError(grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}") from err
        finally:
            if self.metrics is not None:
                self.metrics.observe_request(spec.name, version, signature_name, status.name,
                                             time.monotonic() - started)  # fmt: skip

    def _predict(
        self, servable: Servable, signature_name: str, decode: InputDecoder, declare: InputDeclaration | None,
        output_filter: list[str], deadline: float | None,
    ) -> dict[str, np.ndarray]:  # fmt: skip
        signature = servable.signature(signature_name)
        if declare is not None:  # checked on what the request declares, before anything is decoded
            declared = declare()
            servable.check_request(signature_name, declared, output_filter)
            self.limits.check(declared)
        inputs = dict(decode(signature))
        if declare is None:
            servable.check_request(signature_name, inputs, output_filter)
            self.limits.check(inputs)
        rows = max((np.shape(value)[0] for value in inputs.values() if np.ndim(value)), default=1)
        with self.in_flight.track(RunningRequest(servable.name, servable.version, signature_name, rows)):
            timeout = _remaining(deadline, "before the request ran")
            return self._run(servable, signature_name, inputs, output_filter, timeout)

    def _run(
        self, servable: Servable, signature_name: str, inputs: dict[str, np.ndarray], output_filter: list[str],
        timeout: float | None,
    ) -> dict[str, np.ndarray]:  # fmt: skip
        if self.scheduler is None:
            return servable.run(signature_name, inputs, output_filter, timeout)
        from vswin.serving import batching

        def run_batch(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            # No session deadline: the batch holds other callers' requests, and each caller
            # waits for its own rows only as long as its own deadline (submit's timeout).
            return servable.run(signature_name, batch, output_filter)

        key = (servable.name, servable.version, signature_name, tuple(output_filter))
        try:
            return self.scheduler.submit(key, inputs, run_batch, timeout=timeout)
        except batching.QueueFullError as err:
            raise ServingError(grpc.StatusCode.UNAVAILABLE, str(err) or "The batch scheduling queue is full") from err
        except TimeoutError as err:
            raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline exceeded while waiting in the batch queue") from err
        except ValueError as err:  # BatchTooLargeError, or inputs that cannot be batched (no batch dimension)
            raise invalid_argument(str(err)) from err


def _remaining(deadline: float | None, when: str) -> float | None:
    """Seconds left before `deadline` (None: no deadline); DEADLINE_EXCEEDED once it has passed."""
    if deadline is None:
        return None
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise deadline_exceeded(f"Deadline exceeded {when}")
    return remaining
