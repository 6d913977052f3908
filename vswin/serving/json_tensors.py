"""TF Serving's JSON <-> tensor rules for the REST predict API, on numpy arrays.

Follows tensorflow_serving/util/json_tensor.cc and g3doc/api_rest.md:

- a request is an object with an optional "signature_name" (a string) and either "instances"
  (row format: one item per batch row; objects keyed by input name when the signature has several
  inputs, or when the caller names them) or "inputs" (columnar format: the one input's value, or an
  object of named values, each with its own shape);
- a value is a number, string or bool, or a dense nested list of them; `{"b64": "..."}` carries the
  bytes of a DT_STRING element; its type must match the signature's dtype (integers only for integer
  dtypes, and, unlike TF Serving, within the dtype's range: 256 is not a uint8);
- the response is "predictions" (row format, one item per batch row) or "outputs" (columnar), named
  only when there are several outputs; float32 is written in its shortest round-trip form, NaN and
  infinities as the NaN/Infinity/-Infinity tokens TF Serving writes and reads; DT_STRING outputs
  whose name ends in `_bytes` are written as `{"b64": ...}`.

Every malformed request is INVALID_ARGUMENT with TF Serving's wording (UNIMPLEMENTED for a dtype JSON
cannot carry).
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Mapping
from typing import Any

import grpc
import numpy as np
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from vswin.serving.errors import ServingError, invalid_argument

SIGNATURE_NAME_KEY = "signature_name"
INSTANCES_KEY = "instances"
INPUTS_KEY = "inputs"
PREDICTIONS_KEY = "predictions"
OUTPUTS_KEY = "outputs"
ERROR_KEY = "error"
B64_KEY = "b64"
BYTES_SUFFIX = "_bytes"  # DT_STRING outputs with this name suffix are binary: written as {"b64": ...}
MAX_RANK = 254  # TensorShape::MaxDimensions()
_DEBUG_CHARS = 256  # TF Serving cuts JSON values quoted in errors to this length

# The dtypes JSON can carry, as numpy dtypes (DT_STRING elements are bytes in an object array).
_NUMPY = {
    types_pb2.DT_FLOAT: np.float32, types_pb2.DT_DOUBLE: np.float64,
    types_pb2.DT_INT8: np.int8, types_pb2.DT_UINT8: np.uint8, types_pb2.DT_INT16: np.int16,
    types_pb2.DT_INT32: np.int32, types_pb2.DT_INT64: np.int64, types_pb2.DT_UINT32: np.uint32,
    types_pb2.DT_UINT64: np.uint64, types_pb2.DT_BOOL: np.bool_, types_pb2.DT_STRING: object,
}  # fmt: skip
_FLOATS = {types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE}


class RequestFormat(enum.Enum):
    """Which key held the request's tensors; the response is shaped the same way."""

    ROW = INSTANCES_KEY
    COLUMNAR = INPUTS_KEY


def parse_request(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object; INVALID_ARGUMENT with TF Serving's "JSON Parse error" otherwise."""
    if not body.strip():
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        document = json.loads(body)
    except json.JSONDecodeError as err:
        raise invalid_argument(f"JSON Parse error: {err.msg} at offset: {err.pos}") from err
    except UnicodeDecodeError as err:
        message = f"JSON Parse error: the body is not UTF-8 ({err.reason} at offset: {err.start})"
        raise invalid_argument(message) from err
    except RecursionError as err:
        raise invalid_argument("JSON Parse error: the document is nested too deeply") from err
    if not isinstance(document, dict):
        raise invalid_argument(f"JSON Value: {_debug(document)} Is not object")
    return document


def signature_name(document: Mapping[str, Any]) -> str:
    """The request's optional "signature_name" ('' when absent)."""
    name = document.get(SIGNATURE_NAME_KEY, "")
    if not isinstance(name, str):
        raise invalid_argument(
            f"JSON Value: {_debug(document)} not formatted correctly. 'signature_name' key must be a string value."
        )
    return name


def decode_inputs(
    document: Mapping[str, Any], inputs: Mapping[str, meta_graph_pb2.TensorInfo], exact: bool = True
) -> dict[str, np.ndarray]:
    """The request's tensors, typed by the signature's `inputs`.

    `exact=False` lets numpy convert whole numeric lists at once; it is only safe when the body has
    no `true`/`false` token, since numpy takes a JSON bool for the number 1 or 0. Whenever numpy's
    result is not certain (strings, ragged lists, mixed types, out-of-range values), the element-wise
    reading runs and reports the first problem as TF Serving words it.
    """
    if not inputs:
        raise invalid_argument(f"Failed to get input map for signature: {signature_name(document) or 'DEFAULT'}")
    if INSTANCES_KEY in document and INPUTS_KEY in document:
        raise invalid_argument(
            f"JSON Value: {_debug(document)} Not formatted correctly expecting only one of "
            f"'{INPUTS_KEY}' or '{INSTANCES_KEY}' keys to exist "
        )
    dtypes = {name: info.dtype for name, info in sorted(inputs.items())}
    for name, dtype in dtypes.items():
        if dtype not in _NUMPY:
            raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                               f"Conversion of JSON Value to type: {_type_name(dtype)} (input '{name}')")  # fmt: skip
    if INSTANCES_KEY in document:
        instances = document[INSTANCES_KEY]
        if not isinstance(instances, list):
            raise invalid_argument(f"JSON Value: {_debug(document)} Expecting '{INSTANCES_KEY}' to be an list/array")
        if not instances:
            raise invalid_argument(f"JSON Value: {_debug(document)} No values in '{INSTANCES_KEY}' array")
        return _from_instances(instances, dtypes, exact)
    if INPUTS_KEY in document:
        return _from_columns(document[INPUTS_KEY], dtypes, exact)
    raise invalid_argument(f"Missing '{INPUTS_KEY}' or '{INSTANCES_KEY}' key")


def request_format(document: Mapping[str, Any]) -> RequestFormat:
    """The format of a request that decode_inputs accepted."""
    return RequestFormat.ROW if INSTANCES_KEY in document else RequestFormat.COLUMNAR


def encode_outputs(outputs: Mapping[str, np.ndarray], request_format: RequestFormat) -> dict[str, Any]:
    """The response object for `outputs`: "predictions" (row format) or "outputs" (columnar)."""
    if not outputs:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    arrays = {name: np.asarray(outputs[name]) for name in names}
    if request_format is RequestFormat.COLUMNAR:
        values = {name: _json_values(name, array) for name, array in arrays.items()}
        return {OUTPUTS_KEY: values[names[0]] if len(names) == 1 else values}
    batch = None
    for name, array in arrays.items():
        if array.ndim == 0:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        if batch is not None and array.shape[0] != batch:
            raise invalid_argument(
                f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} expecting: {batch}"
            )
        batch = array.shape[0]
    values = {name: _json_values(name, array) for name, array in arrays.items()}
    if len(names) == 1:
        return {PREDICTIONS_KEY: values[names[0]]}
    return {PREDICTIONS_KEY: [{name: values[name][row] for name in names} for row in range(batch)]}


def error_body(message: str) -> dict[str, str]:
    """TF Serving's error object."""
    return {ERROR_KEY: message}


# -- requests ---------------------------------------------------------------------------------------------


def _from_instances(instances: list, dtypes: dict[str, int], exact: bool) -> dict[str, np.ndarray]:
    """Row format: item i of "instances" is row i of every input."""
    if not _is_named(instances[0]) and len(dtypes) > 1:
        raise invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input tensors required as "
            "per tensorinfo_map"
        )
    names = set(dtypes)
    if _is_named(instances[0]):
        if not exact and all(_is_named(item) and item.keys() == names for item in instances):
            columns = {name: _fast_tensor([item[name] for item in instances], dtype) for name, dtype in dtypes.items()}
            if all(column is not None for column in columns.values()):
                return columns
        return _named_instances(instances, dtypes)
    (name, dtype), = dtypes.items()
    if not exact and not any(_is_named(item) for item in instances):
        column = _fast_tensor(instances, dtype)
        if column is not None:
            return {name: column}
    return _plain_instances(instances, name, dtype)


def _named_instances(instances: list, dtypes: dict[str, int]) -> dict[str, np.ndarray]:
    rows: dict[str, list[np.ndarray]] = {name: [] for name in dtypes}
    for index, item in enumerate(instances):
        if not _is_named(item):
            raise invalid_argument(f"Expecting object but got list at item {index} of input list")
        for name, value in item.items():
            try:
                if name not in dtypes:
                    raise invalid_argument(f"JSON object: does not have named input: {name}")
                _add_row(rows[name], _exact_tensor(value, dtypes[name]))
            except ServingError as err:
                raise invalid_argument(
                    f"Failed to process element: {index} key: {name} of '{INSTANCES_KEY}' list. Error: {err}"
                ) from err
        if item.keys() != dtypes.keys():
            raise invalid_argument(
                f"Failed to process element: {index} of '{INSTANCES_KEY}' list. JSON object: {_debug(item)} keys "
                f"must be equal to: {','.join(sorted(dtypes))}"
            )
    return {name: np.stack(values) for name, values in rows.items()}


def _plain_instances(instances: list, name: str, dtype: int) -> dict[str, np.ndarray]:
    rows: list[np.ndarray] = []
    for index, item in enumerate(instances):
        if _is_named(item):
            raise invalid_argument(f"Expecting value/list but got object at item {index} of input list")
        try:
            _add_row(rows, _exact_tensor(item, dtype))
        except ServingError as err:
            raise invalid_argument(
                f"Failed to process element: {index} of '{INSTANCES_KEY}' list. Error: {err}"
            ) from err
    return {name: np.stack(rows)}


def _add_row(rows: list[np.ndarray], row: np.ndarray) -> None:
    """Append one instance's tensor; every instance of an input must have the first one's size and shape."""
    if rows and rows[0].size != row.size:
        raise invalid_argument(f"Expecting tensor size: {rows[0].size} but got: {row.size}")
    if rows and rows[0].shape != row.shape:
        raise invalid_argument(f"Expecting shape {_shape(rows[0].shape)} but got: {_shape(row.shape)}")
    rows.append(row)


def _from_columns(value: Any, dtypes: dict[str, int], exact: bool) -> dict[str, np.ndarray]:
    """Columnar format: the one input's value, or an object holding each input by name (others ignored)."""
    if not _is_named(value):
        if len(dtypes) > 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input tensors required as "
                "per tensorinfo_map"
            )
        (name, dtype), = dtypes.items()
        return {name: _tensor(value, dtype, exact)}
    tensors = {}
    for name, dtype in dtypes.items():
        if name not in value:
            raise invalid_argument(f"Missing named input: {name} in '{INPUTS_KEY}' object.")
        tensors[name] = _tensor(value[name], dtype, exact)
    return tensors


def _tensor(value: Any, dtype: int, exact: bool) -> np.ndarray:
    fast = None if exact else _fast_tensor(value, dtype)
    return fast if fast is not None else _exact_tensor(value, dtype)


def _fast_tensor(value: Any, dtype: int) -> np.ndarray | None:
    """numpy's conversion of a numeric value when it is certainly right (no JSON bools in it); else None."""
    if dtype == types_pb2.DT_STRING:
        return None
    try:
        with np.errstate(over="ignore"):
            array = np.array(value)
    except (ValueError, TypeError, OverflowError):  # ragged lists, ints beyond 64 bits
        return None
    kind, target = array.dtype.kind, _NUMPY[dtype]
    if dtype == types_pb2.DT_BOOL:
        return array if kind == "b" else None
    if dtype in _FLOATS:
        if kind not in "iuf":
            return None
        with np.errstate(over="ignore"):  # 1e300 is +inf as a float32, as in TF Serving
            return array.astype(target)
    if kind not in "iu":
        return None
    limits = np.iinfo(target)
    if array.size and (array.min() < limits.min or array.max() > limits.max):
        return None
    return array.astype(target)


def _exact_tensor(value: Any, dtype: int) -> np.ndarray:
    """One JSON value as a tensor, element by element with TF Serving's checks (dense lists, types)."""
    shape = []
    probe = value
    while isinstance(probe, list):
        shape.append(len(probe))
        if len(shape) > MAX_RANK:
            raise invalid_argument(f"JSON Value: {_debug(value)} is nested more than {MAX_RANK} lists deep")
        if not probe:
            break
        probe = probe[0]
    flat: list = []
    _fill(value, 0, shape, dtype, flat)
    with np.errstate(over="ignore"):  # 1e300 is +inf as a float32, as in TF Serving
        return np.array(flat, dtype=_NUMPY[dtype]).reshape(shape)


def _fill(value: Any, level: int, shape: list[int], dtype: int, flat: list) -> None:
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise invalid_argument(
                f"JSON Value: {_debug(value)} found at incorrect level: {level + 1} in the JSON DOM. "
                f"Expected at level: {rank}"
            )
        flat.append(_element(value, dtype))
        return
    if level >= rank:
        raise invalid_argument(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise invalid_argument(
            f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: {shape[level]}"
        )
    for item in value:
        _fill(item, level + 1, shape, dtype, flat)


def _element(value: Any, dtype: int) -> Any:
    """One scalar JSON value as a Python value of `dtype`; INVALID_ARGUMENT when it is not of that type."""
    if isinstance(value, dict):
        if dtype == types_pb2.DT_STRING:
            return _decode_b64(value)
    elif dtype in _FLOATS:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError:  # an integer literal beyond any float
                pass
    elif dtype == types_pb2.DT_STRING:
        if isinstance(value, str):
            return value.encode("utf-8", "surrogatepass")
    elif dtype == types_pb2.DT_BOOL:
        if isinstance(value, bool):
            return value
    elif type(value) is int:  # integer dtypes: a JSON integer (not 1.0, not true) within the dtype's range
        limits = np.iinfo(_NUMPY[dtype])
        if limits.min <= value <= limits.max:
            return value
        raise invalid_argument(
            f"JSON Value: {_debug(value)} Type: Number is not of expected type: {_type_name(dtype)} "
            f"(out of its range {limits.min}..{limits.max})"
        )
    raise invalid_argument(
        f"JSON Value: {_debug(value)} Type: {_json_type(value)} is not of expected type: {_type_name(dtype)}"
    )


def _decode_b64(value: dict) -> bytes:
    if not _is_b64(value):
        raise invalid_argument(f"JSON Value: {_debug(value)} not formatted correctly for base64 data")
    try:
        return base64.b64decode(value[B64_KEY], validate=True)
    except (binascii.Error, ValueError) as err:
        raise invalid_argument("Unable to base64 decode") from err


def _is_b64(value: Any) -> bool:
    """`{"b64": "<base64 string>"}` and nothing else: one DT_STRING element's bytes."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(B64_KEY), str)


def _is_named(value: Any) -> bool:
    """An object of named tensors (as opposed to a value, a list or a b64 element)."""
    return isinstance(value, dict) and not _is_b64(value)


# -- responses --------------------------------------------------------------------------------------------


def _json_values(name: str, array: np.ndarray) -> Any:
    """An output tensor as nested lists of JSON values (a bare value for a scalar)."""
    kind = array.dtype.kind
    if array.dtype == np.float32:  # shortest text that reads back as the same float32 (0.2, not 0.200000003)
        return array.astype(str).astype(np.float64).tolist()
    if array.dtype == np.float64 or kind in "iub":
        return array.tolist()
    if kind in "OS":
        as_b64 = name.endswith(BYTES_SUFFIX)
        values = np.frompyfunc(lambda item: _encode_string(item, as_b64), 1, 1)(array)
        return values.tolist() if isinstance(values, np.ndarray) else values
    import tensorflow as tf

    raise invalid_argument(
        f"Failed to write JSON value for tensor type: {_type_name(tf.as_dtype(array.dtype).as_datatype_enum)}"
    )


def _encode_string(value: bytes | str, as_b64: bool) -> str | dict[str, str]:
    """A DT_STRING element: text, or {"b64": ...} for `_bytes` outputs and for bytes that are not UTF-8."""
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogatepass")
    if not as_b64:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:  # TF Serving would write invalid JSON here
            pass
    return {B64_KEY: base64.b64encode(value).decode("ascii")}


# -- wording ----------------------------------------------------------------------------------------------


def _debug(value: Any) -> str:
    """A JSON value quoted in an error message, cut as TF Serving cuts it."""
    return json.dumps(value)[:_DEBUG_CHARS]


def _json_type(value: Any) -> str:
    """rapidjson's type names, which TF Serving's messages use."""
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _type_name(dtype: int) -> str:
    """TensorFlow's DataTypeString: float, double, uint8, string, half, ..."""
    return types_pb2.DataType.Name(dtype)[3:].lower()


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ",".join(str(size) for size in shape) + "]"
