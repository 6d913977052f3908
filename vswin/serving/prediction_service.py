"""PredictionService: Predict and GetModelMetadata as TF Serving answers them; the rest UNIMPLEMENTED."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import grpc
import numpy as np
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from vswin.serving.errors import ServingError, deadline_exceeded, invalid_argument
from vswin.serving.inflight import InFlight, RunningRequest
from vswin.serving.limits import RequestLimits
from vswin.serving.manager import ModelManager
from vswin.serving.servable import DEFAULT_SIGNATURE, Servable
from vswin.serving.tensors import declared, to_ndarray, to_tensor_proto

if TYPE_CHECKING:
    from vswin.serving.batching import BatchScheduler
    from vswin.serving.metrics import ServerMetrics

log = logging.getLogger(__name__)

SIGNATURE_DEF_FIELD = "signature_def"


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Runs requests on the manager's servables, through the batch scheduler when batching is on.

    Work is refused as early as it can be: a passed deadline before anything
    else, unknown or internal signatures and oversized inputs (`limits`, on the
    declared shapes) before any tensor is decoded, and the deadline again
    right before the model runs.
    """

    def __init__(
        self,
        manager: ModelManager,
        scheduler: BatchScheduler | None = None,
        metrics: ServerMetrics | None = None,
        as_tensor_content: bool = False,
        limits: RequestLimits | None = None,
        in_flight: InFlight | None = None,
    ) -> None:
        self.manager = manager
        self.scheduler = scheduler
        self.metrics = metrics
        self.as_tensor_content = as_tensor_content
        if limits is None:  # with batching, the batcher's max_batch_size bounds the rows (as in TF Serving)
            limits = RequestLimits(max_rows=0) if scheduler is not None else RequestLimits()
        self.limits = limits
        self.in_flight = in_flight or InFlight()

    def Predict(self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext) -> predict_pb2.PredictResponse:
        started = time.monotonic()
        signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        version: int | None = None
        status = grpc.StatusCode.OK
        try:
            _remaining(context, "before the request started")
            with self.manager.servable(request.model_spec) as servable:
                version = servable.version
                return self._predict(servable, signature_name, request, context)
        except ServingError as err:
            status = err.code
            context.abort(err.code, err.message)
        except Exception as err:  # never let a request take the server down
            status = grpc.StatusCode.INTERNAL
            log.exception("Predict failed")
            context.abort(grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}")
        finally:
            if self.metrics is not None:
                self.metrics.observe_request(request.model_spec.name, version, signature_name, status.name,
                                             time.monotonic() - started)  # fmt: skip

    def _predict(
        self, servable: Servable, signature_name: str, request: predict_pb2.PredictRequest, context: grpc.ServicerContext
    ) -> predict_pb2.PredictResponse:
        output_filter = list(request.output_filter)
        servable.check_request(signature_name, {key: declared(key, proto) for key, proto in request.inputs.items()},
                               output_filter)  # fmt: skip
        self.limits.check(request.inputs)
        inputs = {key: to_ndarray(key, proto) for key, proto in request.inputs.items()}
        rows = max((shape[0] for shape in map(np.shape, inputs.values()) if shape), default=1)
        with self.in_flight.track(RunningRequest(servable.name, servable.version, signature_name, rows)):
            timeout = _remaining(context, "before the request ran")
            outputs = self._run(servable, signature_name, inputs, output_filter, timeout)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = signature_name
        for alias, value in outputs.items():
            response.outputs[alias].CopyFrom(to_tensor_proto(value, self.as_tensor_content))
        return response

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

    def GetModelMetadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: grpc.ServicerContext
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        try:
            fields = list(request.metadata_field)
            if not fields:
                raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
            for name in fields:
                if name != SIGNATURE_DEF_FIELD:
                    raise invalid_argument(f"Metadata field {name} is not supported")
            with self.manager.servable(request.model_spec) as servable:
                signatures = get_model_metadata_pb2.SignatureDefMap()
                for key, definition in servable.signature_defs.items():
                    signatures.signature_def[key].CopyFrom(definition)
                response = get_model_metadata_pb2.GetModelMetadataResponse()
                response.model_spec.name = servable.name
                response.model_spec.version.value = servable.version
                response.metadata[SIGNATURE_DEF_FIELD].Pack(signatures)
                return response
        except ServingError as err:
            context.abort(err.code, err.message)


def _remaining(context: grpc.ServicerContext, when: str) -> float | None:
    """Seconds left before the request's deadline (None: no deadline); DEADLINE_EXCEEDED once it has passed."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        raise deadline_exceeded(f"Deadline exceeded {when}")
    return remaining
