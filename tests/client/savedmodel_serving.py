"""A one-model TF Serving stand-in that runs a real SavedModel, for end-to-end client tests.

GetModelMetadata answers with the SavedModel's own SignatureDefs (as TF Serving
does); Predict feeds the request's tensors to the named signature. Built on
tensorflow_serving.apis, so the client's wire format is exercised against TF's.
"""

from __future__ import annotations

from concurrent import futures
from pathlib import Path

import grpc
import tensorflow as tf
from tensorflow.python.saved_model import loader_impl
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc


class SavedModelServing(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, name: str, version: int, path: Path, loaded: object) -> None:
        self.name, self.version = name, version
        self.loaded = loaded
        self.signature_defs = loader_impl.parse_saved_model(str(path)).meta_graphs[0].signature_def

    def GetModelMetadata(self, request, context):
        if request.model_spec.name != self.name:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({request.model_spec.name})")
        signatures = get_model_metadata_pb2.SignatureDefMap()
        for key, definition in self.signature_defs.items():
            signatures.signature_def[key].CopyFrom(definition)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.name
        response.model_spec.version.value = self.version
        response.metadata["signature_def"].Pack(signatures)
        return response

    def Predict(self, request, context):
        signature = request.model_spec.signature_name or "serving_default"
        function = self.loaded.signatures[signature]
        inputs = {key: tf.constant(tf.make_ndarray(tensor)) for key, tensor in request.inputs.items()}
        outputs = function(**inputs)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.name
        response.model_spec.version.value = self.version
        response.model_spec.signature_name = signature
        for key, value in outputs.items():
            if not request.output_filter or key in request.output_filter:
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
        return response


def serve_saved_model(name: str, version: int, path: Path, port: int, loaded: object | None = None) -> grpc.Server:
    """Serve the SavedModel at `path` (or its already `loaded` object, sharing compiled functions with the caller)."""
    loaded = loaded if loaded is not None else tf.saved_model.load(str(path))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(SavedModelServing(name, version, path, loaded), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server
