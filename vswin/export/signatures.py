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

from vswin import contract
from vswin.contract import GRAPH, MEAN, STD, XLA


@dataclasses.dataclass(frozen=True)
class ClipGeometry:
    frames: int
    height: int
    width: int

    def frames_spec(self) -> tf.TensorSpec:
        return tf.TensorSpec([None, self.frames, self.height, self.width, 3], tf.uint8, name=contract.FRAMES)

    def clips_spec(self) -> tf.TensorSpec:
        return tf.TensorSpec([None, self.frames, self.height, self.width, 3], tf.float32, name=contract.CLIPS)


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
                     labels: Sequence[str] | None = None, metadata_json: str = "{}") -> list[Signature]:
    """The signatures for `model`; `default` picks which of XLA/graph serves as `serving_default`.

    The non-default variant stays available by name (`features_graph` or
    `features_xla`); the other signatures follow the default's compilation,
    so a server that cannot compile XLA works with `default="graph"`.
    `metadata_json` is what the `metadata` signature returns.
    """
    if default not in (XLA, GRAPH):
        raise ValueError(f"default signature must be {XLA!r} or {GRAPH!r}, not {default!r}")
    jit = default == XLA
    # One traced forward pass per compilation mode, shared by the signatures that use it.
    forward = _compiled(model, jit)
    alternate_forward = _compiled(model, not jit)
    frames_spec = geometry.frames_spec()
    alternate = contract.FEATURES_GRAPH if jit else contract.FEATURES_XLA
    features, feature_map = contract.FEATURES, contract.FEATURE_MAP_OUTPUT
    signatures = [
        Signature(contract.SERVING_DEFAULT, jit, frames_spec,
                  lambda frames: {features: forward(normalize(frames))[features]}),
        Signature(alternate, not jit, frames_spec,
                  lambda frames: {features: alternate_forward(normalize(frames))[features]}),
        Signature(contract.FEATURES_FLOAT, jit, geometry.clips_spec(),
                  lambda clips: {features: forward(clips)[features]}),
        Signature(contract.FEATURE_MAP, jit, frames_spec,
                  lambda frames: {feature_map: forward(normalize(frames))[feature_map]}),
        metadata_signature(metadata_json),
    ]
    if model.has_head:
        signatures.append(Signature(contract.CLASSIFY, jit, frames_spec, _classify_fn(forward, model, labels)))
    return signatures


def metadata_signature(metadata_json: str) -> Signature:
    """`metadata`: the export's description, one JSON string per input row.

    GetModelMetadata carries signatures only, so this is how a client reads the
    preprocessing the model expects. The int32 `row` input only gives the call a
    batch dimension, which TF Serving's batcher requires of every signature.
    """
    spec = tf.TensorSpec([None], tf.int32, name=contract.METADATA_INPUT)

    def metadata(row):
        return {contract.METADATA_OUTPUT: tf.fill(tf.shape(row), tf.constant(metadata_json))}

    return Signature(contract.METADATA, False, spec, metadata)


def _classify_fn(forward: Callable, model, labels: Sequence[str] | None) -> Callable:
    classes = model.config.num_classes
    if labels is not None and len(labels) != classes:
        raise ValueError(f"label file has {len(labels)} labels, the checkpoint's head has {classes} classes")
    names = tf.constant(np.array(labels if labels is not None else [str(i) for i in range(classes)], dtype=object))
    k = min(contract.DEFAULT_TOP_K, classes)

    def classify(frames):
        logits = forward(normalize(frames))[contract.LOGITS]
        probabilities = tf.nn.softmax(logits, axis=-1)
        top = tf.math.top_k(probabilities, k=k)
        return {
            contract.LOGITS: logits,
            contract.PROBABILITIES: probabilities,
            contract.TOP_K_SCORES: top.values,
            contract.TOP_K_CLASSES: tf.cast(top.indices, tf.int32),
            contract.TOP_K_LABELS: tf.gather(names, top.indices),
        }

    return classify
