"""A tiny SavedModel with the export contract's signatures, and helpers to lay out model base paths.

Stands in for the exported micro model where only the serving machinery is
under test: uint8 `frames` [None,16,64,64,3] -> float32 `features` [None,192],
`serving_default` XLA-compiled, the other endpoints plain graphs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

CLIP = (16, 64, 64, 3)
FEATURES = 192
CLASSES = 5
SIGNATURES = ("serving_default", "features_graph", "features_float", "feature_map", "classify")


class TinyExtractor(tf.Module):
    """features = tanh(mean RGB of the clip @ W + b); a deterministic function of `seed`."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.w = tf.Variable(rng.normal(size=(3, FEATURES)).astype("float32"))
        self.b = tf.Variable(rng.normal(size=(FEATURES,)).astype("float32"))
        self.head = tf.Variable(rng.normal(size=(FEATURES, CLASSES)).astype("float32"))

    def _map(self, clips: tf.Tensor) -> tf.Tensor:
        pooled = tf.reduce_mean(tf.reshape(clips, [-1, 8, 2, 2, 32, 2, 32, 3]), axis=[2, 4, 6])  # [B,8,2,2,3]
        return tf.tanh(tf.einsum("btijc,cd->btijd", pooled / 255.0, self.w) + self.b)

    def _features(self, clips: tf.Tensor) -> tf.Tensor:
        return tf.reduce_mean(self._map(clips), axis=[1, 2, 3])

    @tf.function(input_signature=[tf.TensorSpec([None, *CLIP], tf.uint8, name="frames")], jit_compile=True)
    def serving_default(self, frames):
        return {"features": self._features(tf.cast(frames, tf.float32))}

    @tf.function(input_signature=[tf.TensorSpec([None, *CLIP], tf.uint8, name="frames")])
    def features_graph(self, frames):
        return {"features": self._features(tf.cast(frames, tf.float32))}

    @tf.function(input_signature=[tf.TensorSpec([None, *CLIP], tf.float32, name="clips")])
    def features_float(self, clips):
        return {"features": self._features(clips)}

    @tf.function(input_signature=[tf.TensorSpec([None, *CLIP], tf.uint8, name="frames")])
    def feature_map(self, frames):
        return {"feature_map": self._map(tf.cast(frames, tf.float32))}

    @tf.function(input_signature=[tf.TensorSpec([None, *CLIP], tf.uint8, name="frames")])
    def classify(self, frames):
        features = self._features(tf.cast(frames, tf.float32))
        logits = tf.matmul(features, self.head)
        return {"features": features, "logits": logits, "probabilities": tf.nn.softmax(logits)}


def save_tiny_model(path: Path, seed: int = 0) -> Path:
    """Write a TinyExtractor SavedModel to `path` (a version directory)."""
    module = TinyExtractor(seed)
    tf.saved_model.save(module, str(path), signatures={name: getattr(module, name) for name in SIGNATURES})
    return path


def copy_version(source: Path, base: Path, version: int) -> Path:
    """Copy a version directory to BASE/VERSION (how tests make more versions)."""
    target = base / str(version)
    shutil.copytree(source, target)
    return target


def make_corrupt_version(base: Path, version: int) -> Path:
    """A version directory whose saved_model.pb is garbage."""
    target = base / str(version)
    target.mkdir(parents=True)
    (target / "saved_model.pb").write_bytes(b"this is not a SavedModel")
    return target


def clips(batch: int = 2, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(batch, *CLIP), dtype=np.uint8)


def write_warmup(version_dir: Path, requests: list[predict_pb2.PredictRequest]) -> Path:
    """assets.extra/tf_serving_warmup_requests holding `requests` as PredictLog records."""
    path = version_dir / "assets.extra" / "tf_serving_warmup_requests"
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for request in requests:
            entry = prediction_log_pb2.PredictionLog()
            entry.predict_log.request.CopyFrom(request)
            writer.write(entry.SerializeToString())
    return path


class Spinner(tf.Module):
    """`spin`: n int64 [B] -> x float32 [B] after n[0] loop iterations of small ops: a computation that runs
    as long as asked (n = 10**12: hours) and, being many ops, is stopped by a Session's cancellation."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="n")])
    def spin(self, n):
        _, x = tf.while_loop(lambda i, x: i < n[0], lambda i, x: (i + 1, x + tf.sin(x) + 1.0),
                             [tf.constant(0, tf.int64), tf.constant(0.0)])  # fmt: skip
        return {"x": tf.fill(tf.shape(n), x)}


def save_spinner_model(path: Path) -> Path:
    module = Spinner()
    tf.saved_model.save(module, str(path), signatures={"spin": module.spin})
    return path
