"""Building TF Serving requests with tensorflow_serving.apis, as a production client would, and small waits."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, model_management_pb2, predict_pb2

from tests.serving import savedmodels
from vswin.serving.model_config import ModelServerConfig, parse_model_config


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


def config_for(base: Path, policy: str = "", labels: dict[str, int] | None = None, name: str = "tiny") -> ModelServerConfig:
    label_text = " ".join(f'version_labels {{ key: "{k}" value: {v} }}' for k, v in (labels or {}).items())
    policy_text = f"model_version_policy {{ {policy} }}" if policy else ""
    return parse_model_config(
        f'model_config_list {{ config {{ name: "{name}" base_path: "{base}" model_platform: "tensorflow" '
        f"{policy_text} {label_text} }} }}"
    )


def reload_request(config: ModelServerConfig) -> model_management_pb2.ReloadConfigRequest:
    return model_management_pb2.ReloadConfigRequest(config=config)


def served_version(predict, **spec) -> int:
    request = predict_request("tiny", {"frames": savedmodels.clips(1)}, "features_graph", **spec)
    return predict.Predict(request, timeout=60).model_spec.version.value


def wait_for(condition, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
