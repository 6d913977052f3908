"""A half_plus_two-style SavedModel as TF Serving's REST docs and tests use it, plus signatures for every JSON type.

Built as a TF1 graph, like TF Serving's testdata model, so that tensor names (x:0, y:0) and the
SignatureDefs are exactly what the documented responses show:

- serving_default: x float (any shape) -> y = 0.5 * x + 2 (+ 3 for half_plus_three)
- strings: text string [-1], image_bytes string [-1] -> upper (text upper-cased), image_bytes (the same
  bytes; binary by its `_bytes` suffix), length int32 (bytes in image_bytes)
- mixed: a float [-1,2], b int32 [-1], flag bool [-1] -> sum float [-1] (row sum of a, plus b), not_flag bool
- pixels: pixels uint8 [-1,3] -> mean float [-1], pixels uint8 [-1,3] (the same values)
- wide: x double [-1], n int64 [-1] -> x double, n int64 (the same values)
- half: x float [-1] -> y half [-1] (a dtype TF Serving's JSON cannot write)
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

NAME = "half_plus_two"
VERSION = 123
VERSION_DIR = "00000123"  # TF Serving's testdata layout: the version number with leading zeros


def save_half_plus_two(base: Path, offset: float = 2.0) -> Path:
    """Write BASE/00000123 (version 123) and return BASE; offset 3 makes TF Serving's half_plus_three."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        a = v1.Variable(0.5, name="a")
        b = v1.Variable(offset, name="b")
        x = v1.placeholder(tf.float32, shape=None, name="x")
        y = tf.add(tf.multiply(a, x), b, name="y")

        text = v1.placeholder(tf.string, [None], name="text")
        image_bytes = v1.placeholder(tf.string, [None], name="image_bytes")
        upper = tf.strings.upper(text, name="upper")
        echo = tf.identity(image_bytes, name="echo")
        length = tf.strings.length(image_bytes, name="length")

        mixed_a = v1.placeholder(tf.float32, [None, 2], name="mixed_a")
        mixed_b = v1.placeholder(tf.int32, [None], name="mixed_b")
        flag = v1.placeholder(tf.bool, [None], name="flag")
        total = tf.add(tf.reduce_sum(mixed_a, axis=1), tf.cast(mixed_b, tf.float32), name="sum")
        not_flag = tf.logical_not(flag, name="not_flag")

        pixels = v1.placeholder(tf.uint8, [None, 3], name="pixels")
        mean = tf.reduce_mean(tf.cast(pixels, tf.float32), axis=1, name="mean")
        pixels_out = tf.identity(pixels, name="pixels_out")

        wide_x = v1.placeholder(tf.float64, [None], name="wide_x")
        wide_n = v1.placeholder(tf.int64, [None], name="wide_n")
        wide_x_out, wide_n_out = tf.identity(wide_x, name="wide_x_out"), tf.identity(wide_n, name="wide_n_out")

        half_x = v1.placeholder(tf.float32, [None], name="half_x")
        half_y = tf.cast(half_x, tf.float16, name="half_y")

        def signature(inputs, outputs):
            info = v1.saved_model.utils.build_tensor_info
            return v1.saved_model.signature_def_utils.build_signature_def(
                {key: info(t) for key, t in inputs.items()}, {key: info(t) for key, t in outputs.items()},
                v1.saved_model.signature_constants.PREDICT_METHOD_NAME,
            )

        signatures = {
            "serving_default": signature({"x": x}, {"y": y}),
            "strings": signature({"text": text, "image_bytes": image_bytes},
                                 {"upper": upper, "image_bytes": echo, "length": length}),
            "mixed": signature({"a": mixed_a, "b": mixed_b, "flag": flag}, {"sum": total, "not_flag": not_flag}),
            "pixels": signature({"pixels": pixels}, {"mean": mean, "pixels": pixels_out}),
            "wide": signature({"x": wide_x, "n": wide_n}, {"x": wide_x_out, "n": wide_n_out}),
            "half": signature({"x": half_x}, {"y": half_y}),
        }  # fmt: skip
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(str(base / VERSION_DIR))
            builder.add_meta_graph_and_variables(session, [tf.saved_model.SERVING], signature_def_map=signatures)
            builder.save()
    return base
