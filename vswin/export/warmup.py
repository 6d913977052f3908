"""`assets.extra/tf_serving_warmup_requests`: requests TF Serving replays at load (--enable_model_warmup).

`serving_default` is warmed at every batch size of the plan, so every XLA
program its batches need compiles before the first user request; the other
uint8 signatures once, at the smallest size. `feature_map` and `classify`
call the default's traced forward pass, so their larger batches find its
programs compiled (a cold start of Swin-T compiled 4 programs for three XLA
signatures at 1,2,4,8); the graph variant has nothing to compile per size.
Replaying each signature at every size only multiplied the forward passes a
start executes: 60 clips for four signatures at 1,2,4,8, against 18 now. Pixels are all zero and
stored the compact way TensorProto allows (one value, broadcast to the
shape), so a Swin-T warmup file is a few KB instead of hundreds of MB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from vswin.contract import FRAMES, MAX_WARMUP_RECORDS, SERVING_DEFAULT, WARMUP_FILE


def zero_pixels(shape: Iterable[int]) -> tensor_pb2.TensorProto:
    dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=int(size)) for size in shape]
    return tensor_pb2.TensorProto(dtype=types_pb2.DT_UINT8, tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=dims),
                                  int_val=[0])


def warmup_plan(signatures: Iterable[str], batch_sizes: Iterable[int]) -> list[tuple[str, int]]:
    """(signature, batch) pairs: `serving_default` at every size, the others at the smallest."""
    sizes = sorted(set(batch_sizes))
    return [(name, batch) for name in signatures for batch in (sizes if name == SERVING_DEFAULT else sizes[:1])]


def describe_plan(plan: Iterable[tuple[str, int]]) -> str:
    """The plan for a log line, signatures grouped by their batch sizes: "serving_default at batch sizes 1,2,
    features_graph, classify at 1"."""
    sizes: dict[str, list[int]] = {}
    for signature, batch in plan:
        sizes.setdefault(signature, []).append(batch)
    groups: dict[tuple[int, ...], list[str]] = {}
    for signature, batches in sizes.items():
        groups.setdefault(tuple(batches), []).append(signature)
    return ", ".join(f"{', '.join(names)} at {'batch sizes ' if len(batches) > 1 else ''}{','.join(map(str, batches))}"
                     for batches, names in groups.items())  # fmt: skip


def warmup_logs(model_name: str, plan: Iterable[tuple[str, int]], input_shape: tuple[int, ...],
                input_name: str = FRAMES) -> list[prediction_log_pb2.PredictionLog]:
    """One request of zeros shaped [batch, *input_shape] under `input_name` per (signature, batch) of `plan`."""
    logs = []
    for signature, batch in plan:
        request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature))
        request.inputs[input_name].CopyFrom(zero_pixels((batch, *input_shape)))
        logs.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request)))
    if len(logs) > MAX_WARMUP_RECORDS:
        raise ValueError(f"{len(logs)} warmup requests; TF Serving replays at most {MAX_WARMUP_RECORDS}")
    return logs


def write_warmup(assets_extra: Path, logs: list[prediction_log_pb2.PredictionLog]) -> Path:
    assets_extra.mkdir(parents=True, exist_ok=True)
    path = assets_extra / WARMUP_FILE
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path


def read_warmup(path: Path) -> list[prediction_log_pb2.PredictionLog]:
    return [prediction_log_pb2.PredictionLog.FromString(record.numpy())
            for record in tf.data.TFRecordDataset(str(path))]
