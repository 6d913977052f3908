"""numpy <-> TensorProto through raw bytes (`tensor_content`), the way TF Serving serializes fast.

Numeric arrays are written as one little-endian byte string and read back with
`np.frombuffer`, so no Python loop ever touches an element. Responses from a
server that does not use `tensor_content` (TF Serving without
`--enable_serialization_as_tensor_content`) carry typed repeated fields
(`float_val`, ...); those are converted by numpy in one call as well.
"""

from __future__ import annotations

import numpy as np

from vswin.client import protos
from vswin.client.errors import InvalidInput

# numpy dtype <-> DataType number, and the repeated field each dtype uses without tensor_content.
_DTYPES: dict[np.dtype, int] = {
    np.dtype(np.float32): 1,
    np.dtype(np.float64): 2,
    np.dtype(np.int32): 3,
    np.dtype(np.uint8): 4,
    np.dtype(np.int16): 5,
    np.dtype(np.int8): 6,
    np.dtype(np.complex64): 8,
    np.dtype(np.int64): 9,
    np.dtype(np.bool_): 10,
    np.dtype(np.uint16): 17,
    np.dtype(np.complex128): 18,
    np.dtype(np.float16): 19,
    np.dtype(np.uint32): 22,
    np.dtype(np.uint64): 23,
}
_NUMPY: dict[int, np.dtype] = {number: dtype for dtype, number in _DTYPES.items()}
DT_STRING = 7
_VAL_FIELDS = {
    1: "float_val", 2: "double_val", 3: "int_val", 4: "int_val", 5: "int_val", 6: "int_val", 9: "int64_val",
    10: "bool_val", 17: "int_val", 19: "half_val", 22: "uint32_val", 23: "uint64_val",
}  # fmt: skip


def dtype_name(number: int) -> str:
    """'DT_FLOAT' for 1, and so on: for error messages."""
    value = protos.DataType.values_by_number.get(number)
    return value.name if value else f"DataType({number})"


def numpy_dtype(number: int) -> np.dtype:
    """The numpy dtype of a TensorFlow DataType number (strings are `object` arrays of bytes)."""
    if number == DT_STRING:
        return np.dtype(object)
    if number not in _NUMPY:
        raise InvalidInput(f"tensor dtype {dtype_name(number)} has no numpy equivalent in this client")
    return _NUMPY[number]


def to_tensor_proto(array: np.ndarray | list | bytes | str, out: protos.TensorProto | None = None) -> protos.TensorProto:
    """Serialize an array (numeric or strings) into a TensorProto, numeric data as one `tensor_content` blob.

    `out` lets a caller fill a message in place, e.g. `request.inputs[name]`, without a copy.
    """
    proto = protos.TensorProto() if out is None else out
    array = np.asarray(array)
    _set_header(proto, array)
    if proto.dtype == DT_STRING:
        proto.string_val.extend(_as_bytes(item) for item in array.reshape(-1))
    else:
        proto.tensor_content = _little_endian(array).tobytes()
    return proto


def _set_header(proto: protos.TensorProto, array: np.ndarray) -> None:
    """dtype and shape of `array` into `proto`."""
    proto.tensor_shape.dim.extend(protos.TensorShapeProto.Dim(size=int(n)) for n in array.shape)
    if array.dtype.kind in "USO":
        proto.dtype = DT_STRING
        return
    dtype = array.dtype.newbyteorder("=") if array.dtype.byteorder in "<>" else array.dtype
    if dtype not in _DTYPES:
        raise InvalidInput(f"array dtype {array.dtype} cannot be sent as a TensorFlow tensor")
    proto.dtype = _DTYPES[dtype]


def _little_endian(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))


def tensor_parts(array: np.ndarray) -> list[bytes | memoryview]:
    """A TensorProto's wire bytes as pieces, the array's memory itself as the last piece (no copy).

    The header (dtype, shape) is serialized by protobuf; `tensor_content`
    (field 4, length-delimited) is appended by hand, which is what protobuf
    would write. Joining the pieces is then the only copy of the payload,
    where TensorProto + SerializeToString would copy it three times.
    """
    array = np.asarray(array)
    if array.dtype.kind in "USO" or array.size == 0:
        return [to_tensor_proto(array).SerializeToString()]
    header = protos.TensorProto()
    _set_header(header, array)
    content = memoryview(_little_endian(array)).cast("B")
    return [header.SerializeToString(), length_delimited_key(4, content.nbytes), content]


def varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative integer."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def length_delimited_key(field_number: int, length: int) -> bytes:
    """Tag (wire type 2) and length of a bytes/message field."""
    return varint(field_number << 3 | 2) + varint(length)


def _as_bytes(item: object) -> bytes:
    return item if isinstance(item, bytes) else str(item).encode("utf-8")


def to_numpy(proto: protos.TensorProto) -> np.ndarray:
    """Deserialize a TensorProto into a numpy array.

    From `tensor_content` the array is a read-only view of the message's bytes
    (zero copy); `np.array(result)` when a writable copy is needed.
    """
    shape = tuple(int(d.size) for d in proto.tensor_shape.dim)
    size = int(np.prod(shape, dtype=np.int64))
    if proto.dtype == DT_STRING:
        values = np.empty(len(proto.string_val), dtype=object)
        values[:] = list(proto.string_val)
        return _fill(values, shape, size, proto)
    dtype = numpy_dtype(proto.dtype)
    if proto.tensor_content:
        data = np.frombuffer(proto.tensor_content, dtype=dtype.newbyteorder("<"))
        if data.size != size:
            raise InvalidInput(f"tensor_content holds {data.size} values of {dtype}, shape {shape} needs {size}")
        return data.reshape(shape)
    field = _VAL_FIELDS.get(proto.dtype)
    if field is None:
        raise InvalidInput(f"tensor of {dtype_name(proto.dtype)} without tensor_content is not supported")
    values = np.array(getattr(proto, field))
    values = values.astype(np.uint16).view(np.float16) if proto.dtype == 19 else values.astype(dtype)
    return _fill(values, shape, size, proto)


def _fill(values: np.ndarray, shape: tuple[int, ...], size: int, proto: protos.TensorProto) -> np.ndarray:
    """TF's rule for typed fields: all values, or one value repeated over the shape, or none (zeros)."""
    if values.size == size:
        return values.reshape(shape)
    if values.size == 1:
        return np.full(shape, values[0], dtype=values.dtype)
    if values.size == 0:
        return np.zeros(shape, dtype=values.dtype) if values.dtype != object else np.full(shape, b"", dtype=object)
    raise InvalidInput(f"{dtype_name(proto.dtype)} tensor has {values.size} values for shape {shape}")
