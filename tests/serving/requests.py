"""Building TF Serving requests with tensorflow_serving.apis, as a production client would."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, predict_pb2


def predict_request(
    model: str, inputs: dict[str, np.ndarray], signature: str = "", version: int | None = None, label: str = "",
    output_filter: tuple[str, ...] = (),
) -> predict_pb2.PredictRequest:  # fmt: skip
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    if label:
        request.model_spec.version_label = label
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    request.output_filter.extend(output_filter)
    return request


def metadata_request(
    model: str, version: int | None = None, label: str = ""
) -> get_model_metadata_pb2.GetModelMetadataRequest:
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = model
    if version is not None:
        request.model_spec.version.value = version
    if label:
        request.model_spec.version_label = label
    request.metadata_field.append("signature_def")
    return request


def status_request(model: str, version: int | None = None) -> get_model_status_pb2.GetModelStatusRequest:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = model
    if version is not None:
        request.model_spec.version.value = version
    return request


def states(response: get_model_status_pb2.GetModelStatusResponse) -> dict[int, str]:
    """version -> state name."""
    names = get_model_status_pb2.ModelVersionStatus.State.Name
    return {entry.version: names(entry.state) for entry in response.model_version_status}
