"""TF Serving's JSON <-> tensor rules (json_tensor.cc): both request formats, every JSON type, the errors' wording."""

from __future__ import annotations

import base64
import json

import grpc
import numpy as np
import pytest
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from vswin.serving.errors import ServingError
from vswin.serving.json_tensors import (
    RequestFormat,
    decode_inputs,
    encode_outputs,
    parse_request,
    request_format,
    signature_name,
)


def infos(**dtypes: int) -> dict[str, meta_graph_pb2.TensorInfo]:
    return {name: meta_graph_pb2.TensorInfo(name=f"{name}:0", dtype=dtype) for name, dtype in dtypes.items()}


FLOAT = infos(x=types_pb2.DT_FLOAT)
ABC = infos(a=types_pb2.DT_FLOAT, b=types_pb2.DT_INT32, c=types_pb2.DT_STRING)


def decode(document: dict, inputs: dict, exact: bool = True) -> dict[str, np.ndarray]:
    return decode_inputs(json.loads(json.dumps(document)), inputs, exact)


def failure(document: dict, inputs: dict, exact: bool = True) -> ServingError:
    with pytest.raises(ServingError) as caught:
        decode(document, inputs, exact)
    return caught.value


@pytest.mark.parametrize("exact", [True, False])
def test_row_format_stacks_instances_along_a_new_batch_dimension(exact):
    scalars = decode({"instances": [1.0, 2, 5.5]}, FLOAT, exact)["x"]
    assert scalars.dtype == np.float32 and scalars.tolist() == [1.0, 2.0, 5.5]
    nested = decode({"instances": [[[1, 2]], [[3, 4]]]}, FLOAT, exact)["x"]  # api_rest.md: 2 tensors of shape [1, 2]
    assert nested.shape == (2, 1, 2) and nested.tolist() == [[[1, 2]], [[3, 4]]]


@pytest.mark.parametrize("exact", [True, False])
def test_row_format_objects_name_each_input_and_share_the_batch_dimension(exact):
    document = {"instances": [{"a": [1, 2], "b": 3, "c": "foo"}, {"a": [4, 5], "b": 6, "c": {"b64": "YmFy"}}]}
    tensors = decode(document, ABC, exact)
    assert tensors["a"].dtype == np.float32 and tensors["a"].tolist() == [[1, 2], [4, 5]]
    assert tensors["b"].dtype == np.int32 and tensors["b"].tolist() == [3, 6]
    assert tensors["c"].dtype == object and tensors["c"].tolist() == [b"foo", b"bar"]
    assert request_format(document) is RequestFormat.ROW


@pytest.mark.parametrize("exact", [True, False])
def test_columnar_format_takes_each_input_with_its_own_shape_and_ignores_other_keys(exact):
    document = {"inputs": {"a": [[1, 2], [3, 4], [5, 6]], "b": 7, "c": ["x"], "unused": [1]}}
    tensors = decode(document, ABC, exact)
    assert tensors["a"].shape == (3, 2) and tensors["b"].shape == () and tensors["c"].shape == (1,)
    assert tensors["b"].dtype == np.int32 and int(tensors["b"]) == 7
    assert request_format(document) is RequestFormat.COLUMNAR
    single = decode({"inputs": [[1.5, 2.5]]}, FLOAT, exact)["x"]
    assert single.shape == (1, 2) and single.tolist() == [[1.5, 2.5]]


def test_b64_objects_carry_the_bytes_of_string_elements_and_plain_strings_their_utf8():
    raw = bytes(range(256))
    document = {"instances": [{"b64": base64.b64encode(raw).decode()}, "h\u00e9llo", {"b64": ""}]}
    assert decode(document, infos(s=types_pb2.DT_STRING))["s"].tolist() == [raw, "h\u00e9llo".encode(), b""]


@pytest.mark.parametrize("exact", [True, False])
def test_numbers_keep_their_precision_in_their_dtype(exact):
    wide = infos(d=types_pb2.DT_DOUBLE, n=types_pb2.DT_INT64, u=types_pb2.DT_UINT64, f=types_pb2.DT_FLOAT)
    document = {"inputs": {"d": [0.1, 1e300], "n": [2**62 + 1, -(2**63)], "u": [2**64 - 1], "f": [0.1, 1e300]}}
    tensors = decode(document, wide, exact)
    assert tensors["d"].tolist() == [0.1, 1e300]
    assert tensors["n"].dtype == np.int64 and tensors["n"].tolist() == [2**62 + 1, -(2**63)]
    assert tensors["u"].dtype == np.uint64 and tensors["u"].tolist() == [2**64 - 1]
    assert tensors["f"].dtype == np.float32 and tensors["f"][0] == np.float32(0.1) and np.isposinf(tensors["f"][1])


def test_nan_and_infinity_tokens_are_read_as_tf_serving_reads_them():
    document = parse_request(b'{"inputs": [NaN, Infinity, -Infinity, 1e3]}')
    values = decode_inputs(document, FLOAT)["x"]
    assert np.isnan(values[0]) and values[1] == np.inf and values[2] == -np.inf and values[3] == 1000


@pytest.mark.parametrize("dtype", [types_pb2.DT_UINT8, types_pb2.DT_INT32, types_pb2.DT_INT64, types_pb2.DT_FLOAT])
def test_numpy_fast_path_and_element_wise_reading_agree(dtype):
    rng = np.random.default_rng(0)
    values = rng.integers(0, 256, size=(2, 4, 5, 3)).tolist()
    document = {"instances": values}
    exact, fast = decode(document, infos(x=dtype), True)["x"], decode(document, infos(x=dtype), False)["x"]
    assert exact.dtype == fast.dtype and exact.shape == fast.shape == (2, 4, 5, 3)
    np.testing.assert_array_equal(exact, fast)


@pytest.mark.parametrize(
    ("document", "inputs", "message"),
    [
        ({"instances": [1], "inputs": [1]}, FLOAT, "expecting only one of 'inputs' or 'instances' keys to exist"),
        ({"signature_name": "s"}, FLOAT, "Missing 'inputs' or 'instances' key"),
        ({"instances": {"x": [1]}}, FLOAT, "Expecting 'instances' to be an list/array"),
        ({"instances": []}, FLOAT, "No values in 'instances' array"),
        ({"instances": [[1], [2]]}, ABC, "instances is a plain list, but expecting list of objects as multiple"),
        ({"inputs": [[1], [2]]}, ABC, "inputs is a plain value/list, but expecting an object as multiple"),
        ({"inputs": {"a": [1], "b": [2]}}, ABC, "Missing named input: c in 'inputs' object."),
        ({"instances": [{"a": [1], "b": 1, "c": "x", "d": 4}]}, ABC,
         "Failed to process element: 0 key: d of 'instances' list. Error: INVALID_ARGUMENT: JSON object: does not "
         "have named input: d"),
        ({"instances": [{"a": [1], "b": 1}]}, ABC, "Failed to process element: 0 of 'instances' list. JSON object: "
         '{"a": [1], "b": 1} keys must be equal to: a,b,c'),
        ({"instances": [{"a": [1], "b": 1, "c": "x"}, [1]]}, ABC, "Expecting object but got list at item 1 of input list"),
        ({"instances": [1, {"y": 2}]}, FLOAT, "Expecting value/list but got object at item 1 of input list"),
        ({"instances": [[1, 2], [3]]}, FLOAT, "Failed to process element: 1 of 'instances' list. Error: "
         "INVALID_ARGUMENT: Expecting tensor size: 2 but got: 1"),
        ({"instances": [[1, 2], [[3], [4]]]}, FLOAT, "Expecting shape [2] but got: [2,1]"),
        ({"inputs": [[1, 2], [3]]}, FLOAT, "Encountered list at unexpected size: 1 at level: 1 expected size: 2"),
        ({"inputs": [[1], [[2]]]}, FLOAT, "Encountered list at unexpected level: 2 expected < 2"),
        ({"inputs": [[1], 2]}, FLOAT, "JSON Value: 2 found at incorrect level: 2 in the JSON DOM. Expected at level: 2"),
        ({"instances": ["x", "y"]}, FLOAT, 'JSON Value: "x" Type: String is not of expected type: float'),
        ({"inputs": [1.5]}, infos(x=types_pb2.DT_INT32), "JSON Value: 1.5 Type: Number is not of expected type: int32"),
        ({"inputs": [True]}, infos(x=types_pb2.DT_INT32), "JSON Value: true Type: True is not of expected type: int32"),
        ({"inputs": [1]}, infos(x=types_pb2.DT_BOOL), "JSON Value: 1 Type: Number is not of expected type: bool"),
        ({"inputs": [None]}, FLOAT, "JSON Value: null Type: Null is not of expected type: float"),
        ({"inputs": [{"b64": "aGk="}]}, FLOAT, "Type: Object is not of expected type: float"),
        ({"inputs": [256]}, infos(x=types_pb2.DT_UINT8), "JSON Value: 256 Type: Number is not of expected type: uint8 "
         "(out of its range 0..255)"),
        ({"inputs": [-1]}, infos(x=types_pb2.DT_UINT8), "out of its range 0..255"),
        ({"inputs": [128]}, infos(x=types_pb2.DT_INT8), "out of its range -128..127"),
        ({"inputs": [2**63]}, infos(x=types_pb2.DT_INT64), "out of its range"),
        ({"inputs": [{"b64": "!!"}]}, infos(s=types_pb2.DT_STRING), "Unable to base64 decode"),
        ({"inputs": [{"b64": 5}]}, infos(s=types_pb2.DT_STRING), "not formatted correctly for base64 data"),
        ({"inputs": [1]}, {}, "Failed to get input map for signature: DEFAULT"),
        ({"inputs": [1]}, infos(x=types_pb2.DT_STRING), "Type: Number is not of expected type: string"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("exact", [True, False])
def test_malformed_inputs_are_invalid_argument_in_tf_servings_words(document, inputs, message, exact):
    error = failure(document, inputs, exact)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.message


def test_a_dtype_json_cannot_carry_is_unimplemented():
    error = failure({"inputs": [1.0]}, infos(x=types_pb2.DT_HALF))
    assert error.code == grpc.StatusCode.UNIMPLEMENTED and "to type: half" in error.message


def test_lists_nested_deeper_than_tensorflows_rank_limit_are_rejected():
    value: list = [1.0]
    for _ in range(300):
        value = [value]
    assert "nested more than 254 lists deep" in failure({"inputs": value}, FLOAT).message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "JSON Parse error: The document is empty"),
        (b"  \n", "JSON Parse error: The document is empty"),
        (b"instances = [1, 2]", "JSON Parse error: Expecting value at offset: 0"),
        (b'{"instances": [1, 2]', "JSON Parse error: Expecting ',' delimiter at offset: 20"),
        (b"[1, 2]", "JSON Value: [1, 2] Is not object"),
        (b'{"instances": ["\xff"]}', "JSON Parse error: the body is not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON Parse error: the document is nested too deeply"),
    ],
)
def test_unparsable_bodies_are_json_parse_errors(body, message):
    with pytest.raises(ServingError) as caught:
        parse_request(body)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert message in caught.value.message


def test_signature_name_is_optional_but_must_be_a_string():
    assert signature_name({"instances": [1]}) == ""
    assert signature_name({"signature_name": "classify"}) == "classify"
    with pytest.raises(ServingError, match="'signature_name' key must be a string value."):
        signature_name({"signature_name": 100})


def test_row_responses_are_predictions_per_batch_row_named_only_for_several_outputs():
    features = np.array([[0.5, 1.0], [2.0, 3.0]], np.float32)
    labels = np.array([b"cat", b"dog"], object)
    assert encode_outputs({"y": features}, RequestFormat.ROW) == {"predictions": [[0.5, 1.0], [2.0, 3.0]]}
    assert encode_outputs({"f": features, "label": labels}, RequestFormat.ROW) == {
        "predictions": [{"f": [0.5, 1.0], "label": "cat"}, {"f": [2.0, 3.0], "label": "dog"}]
    }


def test_columnar_responses_are_outputs_named_only_for_several_outputs():
    scalar, row = np.float32(3.5), np.array([1, 2], np.int64)
    assert encode_outputs({"y": scalar}, RequestFormat.COLUMNAR) == {"outputs": 3.5}
    assert encode_outputs({"y": scalar, "n": row}, RequestFormat.COLUMNAR) == {"outputs": {"y": 3.5, "n": [1, 2]}}


def test_row_responses_need_one_batch_dimension_across_outputs():
    with pytest.raises(ServingError, match="Tensor name: y has no shape information"):
        encode_outputs({"y": np.float32(1)}, RequestFormat.ROW)
    with pytest.raises(ServingError, match="Tensor name: b has inconsistent batch size: 3 expecting: 2"):
        encode_outputs({"a": np.zeros(2), "b": np.zeros(3)}, RequestFormat.ROW)
    with pytest.raises(ServingError, match="Cannot convert empty tensor map to JSON"):
        encode_outputs({}, RequestFormat.ROW)


def test_float32_outputs_are_written_in_their_shortest_round_trip_form():
    values = np.array([0.1, 2.05, 1 / 3, 1e-8, 16777216.0, np.nan, np.inf, -np.inf], np.float32)
    text = json.dumps(encode_outputs({"y": values}, RequestFormat.COLUMNAR))
    assert text == '{"outputs": [0.1, 2.05, 0.33333334, 1e-08, 16777216.0, NaN, Infinity, -Infinity]}'
    read_back = np.array(json.loads(text)["outputs"], np.float32)
    np.testing.assert_array_equal(read_back, values)


def test_other_dtypes_are_written_as_their_json_values():
    outputs = {
        "u8": np.array([0, 255], np.uint8), "flag": np.array([True, False]), "d": np.array([0.1]),
        "n": np.array([2**63 - 1], np.int64),
    }  # fmt: skip
    assert encode_outputs(outputs, RequestFormat.COLUMNAR)["outputs"] == {
        "u8": [0, 255], "flag": [True, False], "d": [0.1], "n": [2**63 - 1]
    }  # fmt: skip


def test_string_outputs_are_text_or_b64_for_bytes_names_and_for_bytes_that_are_not_utf8():
    raw = bytes([0xFF, 0x00, 0x41])
    outputs = {"text": np.array(["h\u00e9".encode(), raw], object), "image_bytes": np.array([b"abc"], object)}
    assert encode_outputs(outputs, RequestFormat.COLUMNAR)["outputs"] == {
        "text": ["h\u00e9", {"b64": base64.b64encode(raw).decode()}],
        "image_bytes": [{"b64": base64.b64encode(b"abc").decode()}],
    }
    assert encode_outputs({"one_bytes": np.array(b"xy", object)}, RequestFormat.COLUMNAR) == {"outputs": {"b64": "eHk="}}


def test_outputs_json_cannot_carry_are_invalid_argument():
    with pytest.raises(ServingError, match="Failed to write JSON value for tensor type: half") as caught:
        encode_outputs({"y": np.zeros(2, np.float16)}, RequestFormat.ROW)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
