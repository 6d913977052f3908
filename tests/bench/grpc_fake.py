"""A loopback TF Serving stand-in for load tests: Predict and GetModelMetadata with TF Serving's own protos.

Every `fail_every`-th Predict answers UNAVAILABLE and each takes `delay_s`,
so counts by gRPC code and latencies over a real gRPC channel are known.
"""

from __future__ import annotations

import threading
import time
from concurrent import futures

import grpc
import numpy as np
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

INPUTS = {"serving_default": ("frames", types_pb2.DT_UINT8, np.uint8), "features_float": ("clips", types_pb2.DT_FLOAT, np.float32)}


def _shape(dims: list[int]) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=n) for n in dims])


class _Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, name: str, clip_shape: tuple[int, int, int], delay_s: float, fail_every: int) -> None:
        self.name, self.clip_shape, self.delay_s, self.fail_every = name, clip_shape, delay_s, fail_every
        self.predicts = 0
        self.request_bytes: list[int] = []
        self._lock = threading.Lock()

    def Predict(self, request, context):
        with self._lock:
            self.predicts += 1
            n = self.predicts
            self.request_bytes.append(request.ByteSize())
        if request.model_spec.name != self.name:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({request.model_spec.name})")
        if self.fail_every and n % self.fail_every == 0:
            context.abort(grpc.StatusCode.UNAVAILABLE, "injected overload")
        signature = request.model_spec.signature_name or "serving_default"
        name, _, dtype = INPUTS[signature]
        tensor = request.inputs[name]
        batch = np.frombuffer(tensor.tensor_content, dtype).reshape([d.size for d in tensor.tensor_shape.dim])
        time.sleep(self.delay_s)
        features = batch.reshape(len(batch), -1).mean(axis=1, keepdims=True).astype(np.float32)
        response = predict_pb2.PredictResponse()
        response.outputs["features"].CopyFrom(
            tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=_shape(list(features.shape)),
                                   tensor_content=features.tobytes())
        )
        return response

    def GetModelMetadata(self, request, context):
        if request.model_spec.name != self.name:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({request.model_spec.name})")
        signatures = get_model_metadata_pb2.SignatureDefMap()
        for signature, (name, dtype, _) in INPUTS.items():
            sig = signatures.signature_def[signature]
            sig.method_name = "tensorflow/serving/predict"
            sig.inputs[name].CopyFrom(meta_graph_pb2.TensorInfo(name=f"{name}:0", dtype=dtype,
                                                                tensor_shape=_shape([-1, *self.clip_shape, 3])))
            sig.outputs["features"].CopyFrom(meta_graph_pb2.TensorInfo(name="out:0", dtype=types_pb2.DT_FLOAT,
                                                                       tensor_shape=_shape([-1, 1])))
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.name
        response.model_spec.version.value = 1
        response.metadata["signature_def"].Pack(signatures)
        return response


class FakeServing:
    """Starts on 127.0.0.1:port; the test that starts it stops it."""

    def __init__(self, port: int, name: str = "toy", clip_shape=(2, 8, 8), delay_s: float = 0.005, fail_every: int = 0):
        self.servicer = _Servicer(name, clip_shape, delay_s, fail_every)
        self.target = f"127.0.0.1:{port}"
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(self.servicer, self._server)
        self._server.add_insecure_port(self.target)
        self._server.start()

    def stop(self) -> None:
        self._server.stop(grace=None)
