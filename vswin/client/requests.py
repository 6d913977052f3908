"""Building TF Serving requests and reading responses: the messages of the client core."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from vswin import contract
from vswin.client import protos
from vswin.client.errors import InvalidInput
from vswin.client.metadata import ModelInfo
from vswin.client.tensors import length_delimited_key, tensor_parts, to_numpy, to_tensor_proto

_LABEL = re.compile(r"[a-zA-Z0-9_]+")


@dataclass(frozen=True)
class ModelRef:
    """Which model to call: name, then a version number or a version label (TF Serving's ModelSpec)."""

    name: str
    version: int | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("model name must not be empty")
        if self.version is not None and self.label is not None:
            raise ValueError(f"give a version or a label, not both (version={self.version}, label={self.label!r})")
        if self.version is not None and self.version < 1:
            raise ValueError(f"model version must be a positive integer, got {self.version}")
        if self.label is not None and not _LABEL.fullmatch(self.label):
            raise ValueError(f"version label must match [a-zA-Z0-9_]+, got {self.label!r}")

    def spec(self, signature: str = "") -> protos.ModelSpec:
        spec = protos.ModelSpec(name=self.name, signature_name=signature)
        if self.version is not None:
            spec.version.value = self.version
        elif self.label is not None:
            spec.version_label = self.label
        return spec

    def describe(self) -> str:
        which = f" version {self.version}" if self.version else (f" label {self.label!r}" if self.label else "")
        return f"model {self.name!r}{which}"


@dataclass(frozen=True)
class VersionStatus:
    """One version's state from GetModelStatus ('AVAILABLE', 'LOADING', ...) and its error, if any."""

    version: int
    state: str
    error_code: int
    error_message: str


@dataclass(frozen=True)
class Classification:
    """The `classify` signature's outputs for a batch: top-k per clip plus the full probabilities."""

    top_k_labels: list[list[str]]
    top_k_classes: np.ndarray
    top_k_scores: np.ndarray
    probabilities: np.ndarray
    logits: np.ndarray


def metadata_request(model: ModelRef, signature: str) -> protos.GetModelMetadataRequest:
    return protos.GetModelMetadataRequest(model_spec=model.spec(signature), metadata_field=["signature_def"])


def status_request(model: ModelRef) -> protos.GetModelStatusRequest:
    return protos.GetModelStatusRequest(model_spec=model.spec())


def predict_request(
    model: ModelRef, signature: str, inputs: dict[str, np.ndarray], output_filter: list[str] | None = None
) -> protos.PredictRequest:
    request = protos.PredictRequest(model_spec=model.spec(signature), output_filter=output_filter or [])
    for name, array in inputs.items():
        to_tensor_proto(array, out=request.inputs[name])
    return request


def encode_predict_request(
    model: ModelRef, signature: str, inputs: dict[str, np.ndarray], output_filter: list[str] | None = None
) -> bytes:
    """The serialized PredictRequest of `predict_request`, built with one copy of each input's data.

    Model spec and output filter are serialized by protobuf; each `inputs` map
    entry (field 2: key = 1, value = 2) is framed by hand around
    `tensor_parts`. Parsers accept fields in any order, so the bytes parse to
    the same message (tests check it against tensorflow_serving.apis).
    """
    head = protos.PredictRequest(model_spec=model.spec(signature), output_filter=output_filter or [])
    parts: list[bytes | memoryview] = [head.SerializeToString()]
    for name, array in inputs.items():
        tensor = tensor_parts(array)
        tensor_len = sum(len(p) if isinstance(p, bytes) else p.nbytes for p in tensor)
        key = name.encode("utf-8")
        key_field = length_delimited_key(1, len(key)) + key
        value_key = length_delimited_key(2, tensor_len)
        parts += [length_delimited_key(2, len(key_field) + len(value_key) + tensor_len), key_field, value_key, *tensor]
    return b"".join(parts)


def predict_outputs(response: protos.PredictResponse) -> dict[str, np.ndarray]:
    return {name: to_numpy(tensor) for name, tensor in response.outputs.items()}


def parse_status(response: protos.GetModelStatusResponse) -> list[VersionStatus]:
    return [
        VersionStatus(
            version=int(s.version),
            state=protos.ModelState.values_by_number[s.state].name
            if s.state in protos.ModelState.values_by_number
            else str(s.state),
            error_code=int(s.status.error_code),
            error_message=s.status.error_message,
        )
        for s in response.model_version_status
    ]


def parse_classification(outputs: dict[str, np.ndarray]) -> Classification:
    labels = outputs[contract.TOP_K_LABELS]
    return Classification(
        top_k_labels=[[_text(v) for v in row] for row in labels],
        top_k_classes=outputs[contract.TOP_K_CLASSES],
        top_k_scores=outputs[contract.TOP_K_SCORES],
        probabilities=outputs.get(contract.PROBABILITIES, np.empty((len(labels), 0), np.float32)),
        logits=outputs.get(contract.LOGITS, np.empty((len(labels), 0), np.float32)),
    )


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def check_views(views: np.ndarray, info: ModelInfo) -> np.ndarray:
    """Validate a uint8 batch against the input's static shape ([B, T, H, W, 3] clips or [B, H, W, 3] images)
    before sending megabytes; a single view gets its batch dimension."""
    views = np.asarray(views)
    expected = info.view_shape
    name = info.input.name
    if views.dtype != np.uint8:
        raise InvalidInput(f"{name} must be uint8 RGB, got {views.dtype}")
    if views.ndim == len(expected):
        views = views[None]
    if views.ndim != len(expected) + 1 or views.shape[1:] != expected or views.shape[0] == 0:
        raise InvalidInput(
            f"{name} must be [batch, {', '.join(map(str, expected))}] for {info.name!r} version {info.version} "
            f"signature {info.signature!r} ({info.input.describe()}), got shape {list(views.shape)}"
        )
    return views
