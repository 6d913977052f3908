"""The client's own protos are wire-compatible with tensorflow_serving.apis, both ways."""

from __future__ import annotations

import numpy as np
import pytest
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, model_pb2, predict_pb2

from vswin.client import protos
from vswin.client.tensors import to_numpy, to_tensor_proto

PAIRS = [
    (protos.TensorProto, tensor_pb2.TensorProto),
    (protos.TensorInfo, meta_graph_pb2.TensorInfo),
    (protos.SignatureDef, meta_graph_pb2.SignatureDef),
    (protos.ModelSpec, model_pb2.ModelSpec),
    (protos.PredictRequest, predict_pb2.PredictRequest),
    (protos.PredictResponse, predict_pb2.PredictResponse),
    (protos.SignatureDefMap, get_model_metadata_pb2.SignatureDefMap),
    (protos.GetModelMetadataRequest, get_model_metadata_pb2.GetModelMetadataRequest),
    (protos.GetModelMetadataResponse, get_model_metadata_pb2.GetModelMetadataResponse),
    (protos.GetModelStatusRequest, get_model_status_pb2.GetModelStatusRequest),
    (protos.GetModelStatusResponse, get_model_status_pb2.GetModelStatusResponse),
    (protos.ModelVersionStatus, get_model_status_pb2.ModelVersionStatus),
]


def _walk(ours, theirs, seen):
    if ours.full_name in seen:
        return
    seen.add(ours.full_name)
    assert ours.full_name == theirs.full_name
    for field in ours.fields:
        other = theirs.fields_by_name[field.name]
        assert (field.number, field.type) == (other.number, other.type) or (
            field.full_name == "tensorflow.serving.StatusProto.error_code" and other.type == other.TYPE_ENUM
        ), field.full_name
        assert field.is_repeated == other.is_repeated, field.full_name
        assert field.is_packed == other.is_packed, field.full_name
        assert (field.containing_oneof and field.containing_oneof.name) == (
            other.containing_oneof and other.containing_oneof.name
        ), field.full_name
        if field.message_type is not None:
            _walk(field.message_type, other.message_type, seen)


@pytest.mark.parametrize("ours, theirs", PAIRS, ids=[p[1].DESCRIPTOR.full_name for p in PAIRS])
def test_every_declared_field_matches_tf_serving_number_type_and_packing(ours, theirs):
    _walk(ours.DESCRIPTOR, theirs.DESCRIPTOR, set())


def test_data_type_numbers_match_tensorflow():
    for value in protos.DataType.values:
        assert types_pb2.DataType.Value(value.name) == value.number


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.int32, np.int64, np.float16, np.bool_])
def test_numeric_tensor_round_trips_both_ways(dtype):
    import tensorflow as tf

    array = (np.arange(2 * 3 * 4).reshape(2, 3, 4) % 7).astype(dtype)
    theirs = tensor_pb2.TensorProto.FromString(to_tensor_proto(array).SerializeToString())
    np.testing.assert_array_equal(tf.make_ndarray(theirs), array)
    back = to_numpy(protos.TensorProto.FromString(tf.make_tensor_proto(array).SerializeToString()))
    assert back.dtype == array.dtype
    np.testing.assert_array_equal(back, array)


def test_string_tensor_round_trips_both_ways():
    import tensorflow as tf

    labels = np.array([[b"abseiling", "b\u00e9bop".encode()], [b"", b"zumba"]], dtype=object)
    theirs = tensor_pb2.TensorProto.FromString(to_tensor_proto(labels).SerializeToString())
    assert theirs.dtype == types_pb2.DT_STRING
    np.testing.assert_array_equal(tf.make_ndarray(theirs), labels)
    back = to_numpy(protos.TensorProto.FromString(tf.make_tensor_proto(labels).SerializeToString()))
    np.testing.assert_array_equal(back, labels)


def test_typed_value_fields_from_tf_are_read_without_tensor_content():
    theirs = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[1.5, 2.5, 3.5, 4.5])
    theirs.tensor_shape.dim.add(size=2)
    theirs.tensor_shape.dim.add(size=2)
    np.testing.assert_array_equal(to_numpy(protos.TensorProto.FromString(theirs.SerializeToString())), [[1.5, 2.5], [3.5, 4.5]])
    scalar_fill = tensor_pb2.TensorProto(dtype=types_pb2.DT_INT32, int_val=[7])
    scalar_fill.tensor_shape.dim.add(size=3)
    np.testing.assert_array_equal(to_numpy(protos.TensorProto.FromString(scalar_fill.SerializeToString())), [7, 7, 7])


def test_predict_request_serialized_by_us_parses_with_tf_serving():
    frames = np.random.default_rng(0).integers(0, 255, (2, 4, 8, 8, 3), dtype=np.uint8)
    ours = protos.PredictRequest(output_filter=["features"])
    ours.model_spec.name = "vswin_tiny"
    ours.model_spec.version_label = "stable"
    ours.model_spec.signature_name = "serving_default"
    to_tensor_proto(frames, out=ours.inputs["frames"])
    theirs = predict_pb2.PredictRequest.FromString(ours.SerializeToString())
    assert theirs.model_spec.name == "vswin_tiny"
    assert theirs.model_spec.WhichOneof("version_choice") == "version_label"
    assert theirs.model_spec.version_label == "stable"
    assert list(theirs.output_filter) == ["features"]
    tensor = theirs.inputs["frames"]
    assert tensor.dtype == types_pb2.DT_UINT8
    assert [d.size for d in tensor.tensor_shape.dim] == [2, 4, 8, 8, 3]
    np.testing.assert_array_equal(np.frombuffer(tensor.tensor_content, np.uint8).reshape(frames.shape), frames)
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(deterministic=True)


def test_predict_response_from_tf_serving_parses_with_ours():
    import tensorflow as tf

    features = np.random.default_rng(1).standard_normal((3, 16)).astype(np.float32)
    theirs = predict_pb2.PredictResponse()
    theirs.model_spec.name = "m"
    theirs.model_spec.version.value = 7
    theirs.outputs["features"].CopyFrom(tf.make_tensor_proto(features))
    theirs.outputs["top_k_classes"].CopyFrom(tf.make_tensor_proto(np.array([[3, 1]] * 3, np.int32)))
    ours = protos.PredictResponse.FromString(theirs.SerializeToString())
    assert ours.model_spec.version.value == 7
    np.testing.assert_array_equal(to_numpy(ours.outputs["features"]), features)
    np.testing.assert_array_equal(to_numpy(ours.outputs["top_k_classes"]), [[3, 1]] * 3)
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(deterministic=True)


def test_metadata_messages_round_trip_with_signature_def_map_in_any():
    request = protos.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "m"
    request.model_spec.version.value = 2
    parsed = get_model_metadata_pb2.GetModelMetadataRequest.FromString(request.SerializeToString())
    assert (parsed.model_spec.version.value, list(parsed.metadata_field)) == (2, ["signature_def"])

    sigs = get_model_metadata_pb2.SignatureDefMap()
    sig = sigs.signature_def["serving_default"]
    sig.method_name = "tensorflow/serving/predict"
    sig.inputs["frames"].name = "serving_default_frames:0"
    sig.inputs["frames"].dtype = types_pb2.DT_UINT8
    for size in (-1, 32, 224, 224, 3):
        sig.inputs["frames"].tensor_shape.dim.add(size=size)
    sig.outputs["features"].dtype = types_pb2.DT_FLOAT
    theirs = get_model_metadata_pb2.GetModelMetadataResponse()
    theirs.model_spec.name = "m"
    theirs.metadata["signature_def"].Pack(sigs)
    ours = protos.GetModelMetadataResponse.FromString(theirs.SerializeToString())
    packed = ours.metadata["signature_def"]
    assert packed.type_url == protos.SIGNATURE_DEF_MAP_URL
    our_sigs = protos.SignatureDefMap.FromString(packed.value)
    assert [d.size for d in our_sigs.signature_def["serving_default"].inputs["frames"].tensor_shape.dim] == [-1, 32, 224, 224, 3]
    # and back: ours re-serialized parses with theirs and unpacks to the same map
    again = get_model_metadata_pb2.GetModelMetadataResponse.FromString(ours.SerializeToString())
    unpacked = get_model_metadata_pb2.SignatureDefMap()
    assert again.metadata["signature_def"].Unpack(unpacked)
    assert unpacked == sigs


def test_status_messages_round_trip():
    request = protos.GetModelStatusRequest()
    request.model_spec.name = "m"
    assert get_model_status_pb2.GetModelStatusRequest.FromString(request.SerializeToString()).model_spec.name == "m"
    theirs = get_model_status_pb2.GetModelStatusResponse()
    status = theirs.model_version_status.add(version=3, state=get_model_status_pb2.ModelVersionStatus.LOADING)
    status.status.error_code = 5
    status.status.error_message = "not yet"
    ours = protos.GetModelStatusResponse.FromString(theirs.SerializeToString())
    got = ours.model_version_status[0]
    assert (got.version, got.state, got.status.error_code, got.status.error_message) == (3, 20, 5, "not yet")
    assert get_model_status_pb2.GetModelStatusResponse.FromString(ours.SerializeToString()) == theirs
