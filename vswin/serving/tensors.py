"""TensorProto <-> numpy for requests and responses, as TF Serving encodes them.

Requests may carry `tensor_content` or typed repeated fields; TensorFlow's
own `make_ndarray` reads both. Responses use the typed repeated fields
(`float_val`, ...) unless `--enable_serialization_as_tensor_content` asks
for one raw `tensor_content` blob, as TF Serving does.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from vswin.serving.errors import invalid_argument

# Repeated field each DataType uses when not serialized as tensor_content (tensor.proto).
_FIELD = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_STRING: "string_val",
}


def to_ndarray(name: str, proto: tensor_pb2.TensorProto) -> np.ndarray:
    """Decode one request tensor; a malformed proto is INVALID_ARGUMENT naming the input."""
    try:
        return tf.make_ndarray(proto)
    except (TypeError, ValueError) as err:
        raise invalid_argument(f"input '{name}' is not a valid TensorProto: {err}") from err


def to_tensor_proto(array: np.ndarray, as_content: bool) -> tensor_pb2.TensorProto:
    """Encode one response tensor: one `tensor_content` blob if `as_content`, else typed repeated fields."""
    array = np.asarray(array)
    if as_content or array.dtype.kind in "U":
        return tf.make_tensor_proto(array)
    dtype = tf.as_dtype(array.dtype).as_datatype_enum
    field = _FIELD.get(dtype)
    if field is None:  # half, bfloat16, complex: TensorFlow's encoder knows their special fields
        return tf.make_tensor_proto(array)
    proto = tensor_pb2.TensorProto(
        dtype=dtype,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in array.shape]
        ),
    )
    getattr(proto, field).extend(array.ravel().tolist())
    return proto
