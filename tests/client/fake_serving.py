"""A small in-test TF Serving stand-in built on the official tensorflow_serving.apis protos.

It speaks PredictionService (Predict, GetModelMetadata) and ModelService
(GetModelStatus) with TF Serving's messages, so every exchange with it also
checks the client's own protos against TF's on the wire. Failures and delays
can be injected to test retries and deadlines.
"""

from __future__ import annotations

import threading
import time
from concurrent import futures
from dataclasses import dataclass, field

import grpc
import numpy as np
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

FEATURE_DIM = 8
LABELS = ["abseiling", "bowling", "cooking", "dancing", "eating"]


def fake_features(frames: np.ndarray) -> np.ndarray:
    """What the fake model computes: per clip, mean of channel c % 3 scaled to 0..1, plus c."""
    per_channel = frames.astype(np.float64).mean(axis=(1, 2, 3)) / 255.0  # [B, 3]
    return (per_channel[:, np.arange(FEATURE_DIM) % 3] + np.arange(FEATURE_DIM)).astype(np.float32)


def fake_logits(frames: np.ndarray) -> np.ndarray:
    return fake_features(frames)[:, : len(LABELS)] * np.array([1, -1, 2, -2, 0.5], np.float32)


def _tensor(array: np.ndarray, as_content: bool) -> tensor_pb2.TensorProto:
    dtype = {np.dtype(np.float32): types_pb2.DT_FLOAT, np.dtype(np.int32): types_pb2.DT_INT32}.get(array.dtype)
    proto = tensor_pb2.TensorProto(
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=n) for n in array.shape]
        )
    )
    if array.dtype == object:
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend(array.reshape(-1).tolist())
    elif as_content:
        proto.dtype = dtype
        proto.tensor_content = array.tobytes()
    else:
        proto.dtype = dtype
        (proto.float_val if dtype == types_pb2.DT_FLOAT else proto.int_val).extend(array.reshape(-1).tolist())
    return proto


def _info(dtype: int, shape: list[int], name: str) -> meta_graph_pb2.TensorInfo:
    return meta_graph_pb2.TensorInfo(
        name=name,
        dtype=dtype,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=n) for n in shape]),
    )


@dataclass
class FakeModel:
    name: str = "fake"
    versions: tuple[int, ...] = (1, 2)
    labels: dict[str, int] = field(default_factory=lambda: {"stable": 1, "canary": 2})
    clip_shape: tuple[int, int, int] = (4, 32, 32)
    max_batch: int | None = None
    as_content: bool = True


class FakeServing(prediction_service_pb2_grpc.PredictionServiceServicer, model_service_pb2_grpc.ModelServiceServicer):
    """Servicer with knobs: `failures` (codes returned by the next Predict calls), `delay` (seconds per Predict)."""

    def __init__(self, model: FakeModel) -> None:
        self.model = model
        self.failures: list[grpc.StatusCode] = []
        self.delay = 0.0
        self.calls: list[tuple[str, float]] = []
        self.requests: list[predict_pb2.PredictRequest] = []
        self._lock = threading.Lock()

    def _version(self, spec, context) -> int:
        if spec.name != self.model.name:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({spec.name})")
        choice = spec.WhichOneof("version_choice")
        if choice == "version":
            if spec.version.value not in self.model.versions:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Specific({spec.name}, {spec.version.value})")
            return spec.version.value
        if choice == "version_label":
            if spec.version_label not in self.model.labels:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Unrecognized servable version label: {spec.version_label}")
            return self.model.labels[spec.version_label]
        return max(self.model.versions)

    def Predict(self, request, context):
        with self._lock:
            self.calls.append(("Predict", time.monotonic()))
            self.requests.append(request)
            failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            context.abort(failure, f"injected {failure.name}")
        if self.delay:
            time.sleep(self.delay)
        version = self._version(request.model_spec, context)
        signature = request.model_spec.signature_name or "serving_default"
        if signature not in ("serving_default", "classify"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Serving signature name: \"{signature}\" not found")
        if set(request.inputs) != {"frames"}:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"input must be 'frames', got {sorted(request.inputs)}")
        tensor = request.inputs["frames"]
        shape = tuple(d.size for d in tensor.tensor_shape.dim)
        expected = (*self.model.clip_shape, 3)
        if tensor.dtype != types_pb2.DT_UINT8 or shape[1:] != expected:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"expects frames uint8 [-1,{','.join(map(str, expected))}]")
        if self.model.max_batch and shape[0] > self.model.max_batch:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Task size {shape[0]} is larger than maximum input batch size {self.model.max_batch}",
            )
        frames = np.frombuffer(tensor.tensor_content, np.uint8).reshape(shape)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.model.name
        response.model_spec.version.value = version
        response.model_spec.signature_name = signature
        if signature == "serving_default":
            outputs = {"features": fake_features(frames)}
        else:
            logits = fake_logits(frames)
            probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            order = np.argsort(-probs, axis=1)[:, :3].astype(np.int32)
            outputs = {
                "logits": logits,
                "probabilities": probs.astype(np.float32),
                "top_k_scores": np.take_along_axis(probs, order, axis=1).astype(np.float32),
                "top_k_classes": order,
                "top_k_labels": np.array([[LABELS[i].encode() for i in row] for row in order], dtype=object),
            }
        for key, value in outputs.items():
            if not request.output_filter or key in request.output_filter:
                response.outputs[key].CopyFrom(_tensor(value, self.model.as_content))
        return response

    def GetModelMetadata(self, request, context):
        self.calls.append(("GetModelMetadata", time.monotonic()))
        version = self._version(request.model_spec, context)
        t, h, w = self.model.clip_shape
        frames = _info(types_pb2.DT_UINT8, [-1, t, h, w, 3], "serving_default_frames:0")
        signatures = get_model_metadata_pb2.SignatureDefMap()
        default = signatures.signature_def["serving_default"]
        default.method_name = "tensorflow/serving/predict"
        default.inputs["frames"].CopyFrom(frames)
        default.outputs["features"].CopyFrom(_info(types_pb2.DT_FLOAT, [-1, FEATURE_DIM], "StatefulPartitionedCall:0"))
        classify = signatures.signature_def["classify"]
        classify.method_name = "tensorflow/serving/predict"
        classify.inputs["frames"].CopyFrom(frames)
        classify.outputs["top_k_labels"].CopyFrom(_info(types_pb2.DT_STRING, [-1, 3], "StatefulPartitionedCall_1:4"))
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.model.name
        response.model_spec.version.value = version
        response.metadata["signature_def"].Pack(signatures)
        return response

    def GetModelStatus(self, request, context):
        self._version(request.model_spec, context)
        response = get_model_status_pb2.GetModelStatusResponse()
        for version in self.model.versions:
            status = response.model_version_status.add(version=version)
            status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        return response


class FakeServer:
    """Starts FakeServing on 127.0.0.1:port; stop() in the test (or fixture) that started it."""

    def __init__(self, port: int, model: FakeModel | None = None) -> None:
        self.servicer = FakeServing(model or FakeModel())
        self.port = port
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(self.servicer, self.server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(self.servicer, self.server)
        self.server.add_insecure_port(f"127.0.0.1:{port}")

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop(grace=None)
