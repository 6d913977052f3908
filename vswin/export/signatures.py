"""The serving signatures of an exported Swin task, video or image (docs/export.md).

Every signature takes a fixed input geometry (T, H, W of a clip, or H, W of
an image, visible in its input shape) and a dynamic batch. uint8 signatures
run the task's preprocessor in the graph, so clients send 4x fewer bytes
than float input and need no knowledge of mean/std. Outputs are float32
whatever the compute precision.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from vswin import contract
from vswin.contract import GRAPH, XLA


@dataclasses.dataclass(frozen=True)
class InputGeometry:
    """The fixed input of an export: `frames` x height x width clips, or height x width images (frames None)."""

    family: str
    frames: int | None
    height: int
    width: int

    @property
    def shape(self) -> tuple[int, ...]:
        """One input without the batch dimension."""
        return (*([self.frames] if self.family == contract.VIDEO else []), self.height, self.width, 3)

    def uint8_spec(self) -> tf.TensorSpec:
        return tf.TensorSpec([None, *self.shape], tf.uint8, name=contract.uint8_input(self.family))

    def float_spec(self) -> tf.TensorSpec:
        return tf.TensorSpec([None, *self.shape], tf.float32, name=contract.float_input(self.family))


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

    @property
    def takes_pixels(self) -> bool:
        """uint8 input (`frames` or `images`): what warmup records can replay with zeros."""
        return self.input_spec.dtype == tf.uint8

    def traced(self) -> tf.types.experimental.GenericFunction:
        function = tf.function(self.fn, input_signature=[self.input_spec], autograph=False)
        function.get_concrete_function()
        return function


def _compiled(fn: Callable, jit_compile: bool) -> Callable:
    return tf.function(fn, jit_compile=jit_compile, autograph=False)


def build_signatures(task, geometry: InputGeometry, default: str = XLA, labels: Sequence[str] | None = None,
                     metadata_json: str = "{}",
                     attention_blocks: Sequence[tuple[int, int]] = ()) -> list[Signature]:
    """The signatures for `task`; `default` picks which of XLA/graph serves as `serving_default`.

    The non-default variant stays available by name (`features_graph` or
    `features_xla`); the other signatures follow the default's compilation,
    so a server that cannot compile XLA works with `default="graph"`.
    `metadata_json` is what the `metadata` signature returns; `attention_blocks`
    ((stage, block) pairs) adds the `attention` signature.
    """
    if default not in (XLA, GRAPH):
        raise ValueError(f"default signature must be {XLA!r} or {GRAPH!r}, not {default!r}")
    jit = default == XLA
    # One traced forward pass per compilation mode, shared by the signatures that use it.
    forward = _compiled(task.extract, jit)
    alternate_forward = _compiled(task.extract, not jit)
    preprocess = task.preprocessor
    pixels = geometry.uint8_spec()
    alternate = contract.FEATURES_GRAPH if jit else contract.FEATURES_XLA
    features, feature_map = contract.FEATURES, contract.FEATURE_MAP_OUTPUT
    signatures = [
        Signature(contract.SERVING_DEFAULT, jit, pixels, lambda x: {features: forward(preprocess(x))[features]}),
        Signature(alternate, not jit, pixels, lambda x: {features: alternate_forward(preprocess(x))[features]}),
        Signature(contract.FEATURES_FLOAT, jit, geometry.float_spec(), lambda x: {features: forward(x)[features]}),
        Signature(contract.FEATURE_MAP, jit, pixels, lambda x: {feature_map: forward(preprocess(x))[feature_map]}),
        metadata_signature(metadata_json),
    ]
    if task.has_head:
        signatures.append(Signature(contract.CLASSIFY, jit, pixels, _classify_fn(forward, task, labels)))
    if attention_blocks:
        signatures.append(Signature(contract.ATTENTION, jit, pixels, _attention_fn(task, geometry, attention_blocks, jit)))
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


def _classify_fn(forward: Callable, task, labels: Sequence[str] | None) -> Callable:
    classes = task.num_classes
    if labels is not None and len(labels) != classes:
        raise ValueError(f"label file has {len(labels)} labels, the checkpoint's head has {classes} classes")
    names = tf.constant(np.array(labels if labels is not None else [str(i) for i in range(classes)], dtype=object))
    k = min(contract.DEFAULT_TOP_K, classes)

    def classify(pixels):
        logits = forward(task.preprocessor(pixels))[contract.LOGITS]
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


def _attention_fn(task, geometry: InputGeometry, blocks: Sequence[tuple[int, int]], jit: bool) -> Callable:
    """Selected blocks' attention, each [B, num_windows, heads, N, N]: the model's [B * num_windows, ...]
    with the batch split out, so a batching server can hand each request its own rows."""
    depths = task.backbone.depths
    flat = [sum(depths[:stage]) + block for stage, block in blocks]
    shapes = task.backbone.attention_shapes((1, *geometry.shape))  # batch 1: [num_windows, heads, N, N]

    def selected(x):
        attention = task.extract(x, return_attention=True)[contract.ATTENTION]
        return [tf.reshape(attention[i], (-1, *shapes[i])) for i in flat]

    forward = _compiled(selected, jit)

    def attention(pixels):
        outputs = forward(task.preprocessor(pixels))
        return {contract.attention_output(stage, block): out for (stage, block), out in zip(blocks, outputs)}

    return attention
