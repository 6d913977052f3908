"""Request decoding without copies and response encoding as TF Serving's rules say, equal to TensorFlow's own."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from vswin.serving.tensors import to_ndarray, to_tensor_proto

ARRAYS = {
    "float32": np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32),
    "float64": np.random.default_rng(1).normal(size=(5,)),
    "bool": np.array([[True, False, True]]),
    "int32": np.array([[-3, 0, 2**31 - 1]], np.int32),
    "uint8": np.array([0, 7, 255], np.uint8),
    "int64": np.array([-(2**40), 5], np.int64),
    "float16": np.array([1.5, -2.0], np.float16),
    "bfloat16": np.array([1.5, -2.0, 3.25], tf.bfloat16.as_numpy_dtype),
    "complex64": np.array([1 + 2j, -3.5j], np.complex64),
    "complex128": np.array([[1 + 2j], [0.25 - 1j]], np.complex128),
    "string": np.array([b"a", b"bc"], dtype=object),
    "empty": np.zeros((0, 768), np.float32),
}


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_typed_field_encoding_round_trips_and_matches_tensorflows_fields(name):
    array = ARRAYS[name]
    proto = to_tensor_proto(array, as_content=False)
    decoded = tf.make_ndarray(proto)
    assert decoded.dtype == array.dtype and decoded.shape == array.shape
    np.testing.assert_array_equal(decoded, array)
    if array.dtype.kind != "O" and array.size:
        assert not proto.tensor_content  # typed fields, as TF Serving answers without the flag
        reference = tf.make_tensor_proto(array)
        assert np.array_equal(tf.make_ndarray(reference), decoded)


@pytest.mark.parametrize("name", ["float32", "uint8", "int64", "bool"])
def test_tensor_content_encoding_is_one_blob(name):
    array = ARRAYS[name]
    proto = to_tensor_proto(array, as_content=True)
    assert proto.tensor_content == array.tobytes()
    np.testing.assert_array_equal(tf.make_ndarray(proto), array)


def test_tensor_content_request_decodes_to_a_read_only_view_of_the_proto():
    frames = np.random.default_rng(2).integers(0, 256, size=(2, 4, 8, 8, 3), dtype=np.uint8)
    proto = tf.make_tensor_proto(frames)
    decoded = to_ndarray("frames", proto)
    np.testing.assert_array_equal(decoded, frames)
    assert not decoded.flags.writeable and not decoded.flags.owndata  # no copy of its own


@pytest.mark.parametrize("name", ["float32", "int32", "bool", "string", "float16"])
def test_typed_field_requests_decode_like_tensorflow(name):
    array = ARRAYS[name]
    proto = to_tensor_proto(array, as_content=False)
    np.testing.assert_array_equal(to_ndarray("x", proto), tf.make_ndarray(proto))
