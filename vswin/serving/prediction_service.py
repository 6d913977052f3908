"""PredictionService: Predict and GetModelMetadata as TF Serving answers them; the rest UNIMPLEMENTED."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import grpc
import numpy as np
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, model_pb2, predict_pb2, prediction_service_pb2_grpc

from vswin.serving.errors import ServingError, invalid_argument
from vswin.serving.manager import ModelManager
from vswin.serving.predictor import Prediction, Predictor
from vswin.serving.tensors import DeclaredTensor, declared, to_ndarray, to_tensor_proto

if TYPE_CHECKING:
    from vswin.serving.batching import BatchScheduler
    from vswin.serving.metrics import ServerMetrics

log = logging.getLogger(__name__)

SIGNATURE_DEF_FIELD = "signature_def"


def model_metadata(
    manager: ModelManager, spec: model_pb2.ModelSpec, fields: list[str]
) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """GetModelMetadata's answer for `spec` (gRPC and REST); only the signature_def field exists."""
    if not fields:
        raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
    for name in fields:
        if name != SIGNATURE_DEF_FIELD:
            raise invalid_argument(f"Metadata field {name} is not supported")
    with manager.servable(spec) as servable:
        signatures = get_model_metadata_pb2.SignatureDefMap()
        for key, definition in servable.signature_defs.items():
            signatures.signature_def[key].CopyFrom(definition)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signatures)
        return response


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Decodes TensorProtos, runs them through the shared Predictor, encodes the outputs as TF Serving does.

    The Predictor sees each input's declared dtype and shape first, so checks and
    limits run before anything is decoded.
    """

    def __init__(
        self,
        manager: ModelManager,
        scheduler: BatchScheduler | None = None,
        metrics: ServerMetrics | None = None,
        as_tensor_content: bool = False,
        predictor: Predictor | None = None,
    ) -> None:
        self.manager = manager
        self.predictor = predictor or Predictor(manager, scheduler, metrics)
        self.as_tensor_content = as_tensor_content

    def Predict(self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext) -> predict_pb2.PredictResponse:
        def declare() -> dict[str, DeclaredTensor]:
            return {key: declared(key, proto) for key, proto in request.inputs.items()}

        def decode(signature: meta_graph_pb2.SignatureDef) -> dict[str, np.ndarray]:
            return {key: to_ndarray(key, proto) for key, proto in request.inputs.items()}

        try:
            prediction = self.predictor.predict(
                request.model_spec, decode, list(request.output_filter), context.time_remaining(), declare
            )
            return self._response(prediction)
        except ServingError as err:
            context.abort(err.code, err.message)
        except Exception as err:  # never let a request take the server down
            log.exception("Predict failed")
            context.abort(grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}")

    def _response(self, prediction: Prediction) -> predict_pb2.PredictResponse:
        response = predict_pb2.PredictResponse()
        response.model_spec.name = prediction.name
        response.model_spec.version.value = prediction.version
        response.model_spec.signature_name = prediction.signature_name
        for alias, value in prediction.outputs.items():
            response.outputs[alias].CopyFrom(to_tensor_proto(value, self.as_tensor_content))
        return response

    def GetModelMetadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: grpc.ServicerContext
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        try:
            return model_metadata(self.manager, request.model_spec, list(request.metadata_field))
        except ServingError as err:
            context.abort(err.code, err.message)
