"""The serving signatures of an exported Video Swin model (DESIGN.md, "Exported SavedModel").

Every signature takes a fixed clip geometry (T, H, W visible in its input
shape) and a dynamic batch. `frames` signatures take RGB uint8 and normalise
in the graph, so clients send 4x fewer bytes than float clips and need no
knowledge of mean/std. Outputs are float32 whatever the compute precision.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from vswin.export.options import GRAPH, XLA
from vswin.model import MEAN, STD

DEFAULT_TOP_K = 5


@dataclasses.dataclass(frozen=True)
class ClipGeometry:
    frames: int
    height: int
    width: int

    def frames_spec(self) -> tf.TensorSpec:
        return tf.TensorSpec([None, self.frames, self.height, self.width, 3], tf.uint8, name="frames")

    def clips_spec(self) -> tf.TensorSpec:
        return tf.TensorSpec([None, self.frames, self.height, self.width, 3], tf.float32, name="clips")


@dataclasses.dataclass(frozen=True)
class Signature:
    """One endpoint: its name, whether its forward pass is XLA-compiled, its input spec and the function.

    The endpoint itself is a plain graph function; the model's forward pass
    inside it is a nested `jit_compile` function when `jit_compile` is set.
    That keeps what XLA cannot compile (string labels) outside the compiled
    cluster, and lets signatures share one traced forward pass.
    """

    name: str
    jit_compile: bool
    input_spec: tf.TensorSpec
    fn: Callable

    def traced(self) -> tf.types.experimental.GenericFunction:
        function = tf.function(self.fn, input_signature=[self.input_spec], autograph=False)
        function.get_concrete_function()
        return function


def _compiled(fn: Callable, jit_compile: bool) -> Callable:
    return tf.function(fn, jit_compile=jit_compile, autograph=False)


def normalize(frames: tf.Tensor) -> tf.Tensor:
    """uint8 RGB frames -> float32 clips with the official mean/std."""
    mean = tf.constant(MEAN, tf.float32)
    std = tf.constant(STD, tf.float32)
    return (tf.cast(frames, tf.float32) - mean) / std


def build_signatures(model, geometry: ClipGeometry, default: str = XLA,
                     labels: Sequence[str] | None = None) -> list[Signature]:
    """The signatures for `model`; `default` picks which of XLA/graph serves as `serving_default`.

    The non-default variant stays available by name (`features_graph` or
    `features_xla`); the other signatures follow the default's compilation,
    so a server that cannot compile XLA works with `default="graph"`.
    """
    if default not in (XLA, GRAPH):
        raise ValueError(f"default signature must be {XLA!r} or {GRAPH!r}, not {default!r}")
    jit = default == XLA
    # One traced forward pass per compilation mode, shared by the signatures that use it.
    forward = _compiled(model, jit)
    alternate_forward = _compiled(model, not jit)
    frames_spec = geometry.frames_spec()
    alternate = "features_graph" if jit else "features_xla"
    signatures = [
        Signature("serving_default", jit, frames_spec,
                  lambda frames: {"features": forward(normalize(frames))["features"]}),
        Signature(alternate, not jit, frames_spec,
                  lambda frames: {"features": alternate_forward(normalize(frames))["features"]}),
        Signature("features_float", jit, geometry.clips_spec(), lambda clips: {"features": forward(clips)["features"]}),
        Signature("feature_map", jit, frames_spec,
                  lambda frames: {"feature_map": forward(normalize(frames))["feature_map"]}),
    ]
    if model.has_head:
        signatures.append(Signature("classify", jit, frames_spec, _classify_fn(forward, model, labels)))
    return signatures


def _classify_fn(forward: Callable, model, labels: Sequence[str] | None) -> Callable:
    classes = model.config.num_classes
    if labels is not None and len(labels) != classes:
        raise ValueError(f"label file has {len(labels)} labels, the checkpoint's head has {classes} classes")
    names = tf.constant(np.array(labels if labels is not None else [str(i) for i in range(classes)], dtype=object))
    k = min(DEFAULT_TOP_K, classes)

    def classify(frames):
        logits = forward(normalize(frames))["logits"]
        probabilities = tf.nn.softmax(logits, axis=-1)
        top = tf.math.top_k(probabilities, k=k)
        return {
            "logits": logits,
            "probabilities": probabilities,
            "top_k_scores": top.values,
            "top_k_classes": tf.cast(top.indices, tf.int32),
            "top_k_labels": tf.gather(names, top.indices),
        }

    return classify
