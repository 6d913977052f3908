"""`assets.extra/tf_serving_warmup_requests`: requests TF Serving replays at load (--enable_model_warmup).

One PredictRequest per uint8 signature and batch size, so every XLA
cluster compiles before the first user request. Pixels are all zero and
stored the compact way TensorProto allows (one value, broadcast to the
shape), so a Swin-T warmup file is a few KB instead of hundreds of MB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from vswin.contract import FRAMES, MAX_WARMUP_RECORDS, WARMUP_FILE


def zero_pixels(shape: Iterable[int]) -> tensor_pb2.TensorProto:
    dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=int(size)) for size in shape]
    return tensor_pb2.TensorProto(dtype=types_pb2.DT_UINT8, tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=dims),
                                  int_val=[0])


def warmup_logs(model_name: str, signatures: Iterable[str], batch_sizes: Iterable[int],
                input_shape: tuple[int, ...], input_name: str = FRAMES) -> list[prediction_log_pb2.PredictionLog]:
    """Requests of zeros shaped [batch, *input_shape] under `input_name` (`frames` or `images`)."""
    logs = []
    for signature in signatures:
        for batch in batch_sizes:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature)
            )
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
