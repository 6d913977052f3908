"""TF Serving's gRPC messages, rebuilt from descriptors at import: no TensorFlow, no generated code.

Why descriptors instead of `*_pb2.py` files: generated modules are pinned to the
protobuf version of the `protoc` that wrote them (protobuf 5+ checks gencode
against the runtime at import), and `tensorflow-serving-api` drags in all of
TensorFlow. Building `FileDescriptorProto`s here works with any protobuf >= 4.21
runtime and keeps the client to grpcio + protobuf + numpy.

The messages live in a private `DescriptorPool`, so they coexist with
TensorFlow's own classes in one process (tests load both), while keeping TF's
full names (`tensorflow.TensorProto`, `tensorflow.serving.PredictRequest`, ...):
type URLs in `Any` and gRPC method paths match TF Serving's exactly.

Only the fields this client reads or writes are declared; each keeps TF's field
number, type and packing, so bytes are identical in both directions and any
field left out survives as an unknown field. `StatusProto.error_code` is an
enum (`tensorflow.error.Code`) in TF; it is declared `int32` here, which is the
same varint on the wire. tests/client/test_client_protos.py checks every declared field
against `tensorflow_serving.apis` and round-trips messages both ways.
"""

from __future__ import annotations

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

_F = descriptor_pb2.FieldDescriptorProto

PREDICTION_SERVICE = "tensorflow.serving.PredictionService"
MODEL_SERVICE = "tensorflow.serving.ModelService"
SIGNATURE_DEF_MAP_URL = "type.googleapis.com/tensorflow.serving.SignatureDefMap"


def _field(
    name: str,
    number: int,
    ftype: int,
    type_name: str = "",
    repeated: bool = False,
    oneof: int | None = None,
    packed: bool = False,
) -> _F:
    field = _F(name=name, number=number, type=ftype, json_name=_json_name(name))
    field.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    if type_name:
        field.type_name = type_name
    if oneof is not None:
        field.oneof_index = oneof
    if packed:
        field.options.packed = True
    return field


def _json_name(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _map_entry(name: str, value_type: int, value_type_name: str = "") -> descriptor_pb2.DescriptorProto:
    entry = descriptor_pb2.DescriptorProto(name=name)
    entry.field.extend([_field("key", 1, _F.TYPE_STRING), _field("value", 2, value_type, value_type_name)])
    entry.options.map_entry = True
    return entry


def _message(
    name: str,
    fields: list[_F],
    maps: list[descriptor_pb2.DescriptorProto] = (),
    nested: list[descriptor_pb2.DescriptorProto] = (),
    enums: list[descriptor_pb2.EnumDescriptorProto] = (),
    oneofs: list[str] = (),
) -> descriptor_pb2.DescriptorProto:
    message = descriptor_pb2.DescriptorProto(name=name)
    message.field.extend(fields)
    message.nested_type.extend([*maps, *nested])
    message.enum_type.extend(enums)
    message.oneof_decl.extend(descriptor_pb2.OneofDescriptorProto(name=o) for o in oneofs)
    return message


def _enum(name: str, values: list[tuple[str, int]]) -> descriptor_pb2.EnumDescriptorProto:
    enum = descriptor_pb2.EnumDescriptorProto(name=name)
    enum.value.extend(descriptor_pb2.EnumValueDescriptorProto(name=n, number=v) for n, v in values)
    return enum


# DataType numbers from tensorflow/core/framework/types.proto (the ones a client meets).
DATA_TYPES = [
    ("DT_INVALID", 0), ("DT_FLOAT", 1), ("DT_DOUBLE", 2), ("DT_INT32", 3), ("DT_UINT8", 4),
    ("DT_INT16", 5), ("DT_INT8", 6), ("DT_STRING", 7), ("DT_COMPLEX64", 8), ("DT_INT64", 9),
    ("DT_BOOL", 10), ("DT_BFLOAT16", 14), ("DT_UINT16", 17), ("DT_COMPLEX128", 18), ("DT_HALF", 19),
    ("DT_UINT32", 22), ("DT_UINT64", 23),
]  # fmt: skip


def _tensorflow_file() -> descriptor_pb2.FileDescriptorProto:
    """tensorflow.{DataType, TensorShapeProto, TensorProto, TensorInfo, SignatureDef}."""
    dim = _message("Dim", [_field("size", 1, _F.TYPE_INT64), _field("name", 2, _F.TYPE_STRING)])
    shape = _message(
        "TensorShapeProto",
        [
            _field("dim", 2, _F.TYPE_MESSAGE, ".tensorflow.TensorShapeProto.Dim", repeated=True),
            _field("unknown_rank", 3, _F.TYPE_BOOL),
        ],
        nested=[dim],
    )
    tensor = _message(
        "TensorProto",
        [
            _field("dtype", 1, _F.TYPE_ENUM, ".tensorflow.DataType"),
            _field("tensor_shape", 2, _F.TYPE_MESSAGE, ".tensorflow.TensorShapeProto"),
            _field("version_number", 3, _F.TYPE_INT32),
            _field("tensor_content", 4, _F.TYPE_BYTES),
            _field("half_val", 13, _F.TYPE_INT32, repeated=True, packed=True),
            _field("float_val", 5, _F.TYPE_FLOAT, repeated=True, packed=True),
            _field("double_val", 6, _F.TYPE_DOUBLE, repeated=True, packed=True),
            _field("int_val", 7, _F.TYPE_INT32, repeated=True, packed=True),
            _field("string_val", 8, _F.TYPE_BYTES, repeated=True),
            _field("int64_val", 10, _F.TYPE_INT64, repeated=True, packed=True),
            _field("bool_val", 11, _F.TYPE_BOOL, repeated=True, packed=True),
            _field("uint32_val", 16, _F.TYPE_UINT32, repeated=True, packed=True),
            _field("uint64_val", 17, _F.TYPE_UINT64, repeated=True, packed=True),
        ],
    )
    tensor_info = _message(
        "TensorInfo",
        [
            _field("name", 1, _F.TYPE_STRING, oneof=0),
            _field("dtype", 2, _F.TYPE_ENUM, ".tensorflow.DataType"),
            _field("tensor_shape", 3, _F.TYPE_MESSAGE, ".tensorflow.TensorShapeProto"),
        ],
        oneofs=["encoding"],
    )
    signature = _message(
        "SignatureDef",
        [
            _field("inputs", 1, _F.TYPE_MESSAGE, ".tensorflow.SignatureDef.InputsEntry", repeated=True),
            _field("outputs", 2, _F.TYPE_MESSAGE, ".tensorflow.SignatureDef.OutputsEntry", repeated=True),
            _field("method_name", 3, _F.TYPE_STRING),
        ],
        maps=[
            _map_entry("InputsEntry", _F.TYPE_MESSAGE, ".tensorflow.TensorInfo"),
            _map_entry("OutputsEntry", _F.TYPE_MESSAGE, ".tensorflow.TensorInfo"),
        ],
    )
    file = descriptor_pb2.FileDescriptorProto(name="vswin/client/tensorflow.proto", package="tensorflow", syntax="proto3")
    file.enum_type.append(_enum("DataType", DATA_TYPES))
    file.message_type.extend([shape, tensor, tensor_info, signature])
    return file


def _serving_file() -> descriptor_pb2.FileDescriptorProto:
    """tensorflow.serving.{ModelSpec, Predict*, GetModelMetadata*, GetModelStatus*} and the two services."""
    spec = _message(
        "ModelSpec",
        [
            _field("name", 1, _F.TYPE_STRING),
            _field("version", 2, _F.TYPE_MESSAGE, ".google.protobuf.Int64Value", oneof=0),
            _field("version_label", 4, _F.TYPE_STRING, oneof=0),
            _field("signature_name", 3, _F.TYPE_STRING),
        ],
        oneofs=["version_choice"],
    )
    tensor_map = ".tensorflow.TensorProto"
    predict_request = _message(
        "PredictRequest",
        [
            _field("model_spec", 1, _F.TYPE_MESSAGE, ".tensorflow.serving.ModelSpec"),
            _field("inputs", 2, _F.TYPE_MESSAGE, ".tensorflow.serving.PredictRequest.InputsEntry", repeated=True),
            _field("output_filter", 3, _F.TYPE_STRING, repeated=True),
        ],
        maps=[_map_entry("InputsEntry", _F.TYPE_MESSAGE, tensor_map)],
    )
    predict_response = _message(
        "PredictResponse",
        [
            _field("model_spec", 2, _F.TYPE_MESSAGE, ".tensorflow.serving.ModelSpec"),
            _field("outputs", 1, _F.TYPE_MESSAGE, ".tensorflow.serving.PredictResponse.OutputsEntry", repeated=True),
        ],
        maps=[_map_entry("OutputsEntry", _F.TYPE_MESSAGE, tensor_map)],
    )
    signature_map = _message(
        "SignatureDefMap",
        [
            _field(
                "signature_def", 1, _F.TYPE_MESSAGE, ".tensorflow.serving.SignatureDefMap.SignatureDefEntry", repeated=True
            )
        ],
        maps=[_map_entry("SignatureDefEntry", _F.TYPE_MESSAGE, ".tensorflow.SignatureDef")],
    )
    metadata_request = _message(
        "GetModelMetadataRequest",
        [
            _field("model_spec", 1, _F.TYPE_MESSAGE, ".tensorflow.serving.ModelSpec"),
            _field("metadata_field", 2, _F.TYPE_STRING, repeated=True),
        ],
    )
    metadata_response = _message(
        "GetModelMetadataResponse",
        [
            _field("model_spec", 1, _F.TYPE_MESSAGE, ".tensorflow.serving.ModelSpec"),
            _field(
                "metadata", 2, _F.TYPE_MESSAGE, ".tensorflow.serving.GetModelMetadataResponse.MetadataEntry", repeated=True
            ),
        ],
        maps=[_map_entry("MetadataEntry", _F.TYPE_MESSAGE, ".google.protobuf.Any")],
    )
    status_proto = _message(
        "StatusProto", [_field("error_code", 1, _F.TYPE_INT32), _field("error_message", 2, _F.TYPE_STRING)]
    )
    version_status = _message(
        "ModelVersionStatus",
        [
            _field("version", 1, _F.TYPE_INT64),
            _field("state", 2, _F.TYPE_ENUM, ".tensorflow.serving.ModelVersionStatus.State"),
            _field("status", 3, _F.TYPE_MESSAGE, ".tensorflow.serving.StatusProto"),
        ],
        enums=[
            _enum(
                "State",
                [("UNKNOWN", 0), ("START", 10), ("LOADING", 20), ("AVAILABLE", 30), ("UNLOADING", 40), ("END", 50)],
            )
        ],
    )
    status_request = _message(
        "GetModelStatusRequest", [_field("model_spec", 1, _F.TYPE_MESSAGE, ".tensorflow.serving.ModelSpec")]
    )
    status_response = _message(
        "GetModelStatusResponse",
        [
            _field(
                "model_version_status", 1, _F.TYPE_MESSAGE, ".tensorflow.serving.ModelVersionStatus", repeated=True
            )
        ],
    )
    file = descriptor_pb2.FileDescriptorProto(
        name="vswin/client/tensorflow_serving.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/any.proto", "google/protobuf/wrappers.proto", "vswin/client/tensorflow.proto"],
    )
    file.message_type.extend(
        [
            spec, predict_request, predict_response, signature_map, metadata_request, metadata_response,
            status_proto, version_status, status_request, status_response,
        ]
    )  # fmt: skip
    return file


def _build_pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    for module in (any_pb2, wrappers_pb2):
        well_known = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(well_known)
        pool.Add(well_known)
    pool.Add(_tensorflow_file())
    pool.Add(_serving_file())
    return pool


POOL = _build_pool()


def _cls(full_name: str) -> type:
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(full_name))


TensorShapeProto = _cls("tensorflow.TensorShapeProto")
TensorProto = _cls("tensorflow.TensorProto")
TensorInfo = _cls("tensorflow.TensorInfo")
SignatureDef = _cls("tensorflow.SignatureDef")
ModelSpec = _cls("tensorflow.serving.ModelSpec")
PredictRequest = _cls("tensorflow.serving.PredictRequest")
PredictResponse = _cls("tensorflow.serving.PredictResponse")
SignatureDefMap = _cls("tensorflow.serving.SignatureDefMap")
GetModelMetadataRequest = _cls("tensorflow.serving.GetModelMetadataRequest")
GetModelMetadataResponse = _cls("tensorflow.serving.GetModelMetadataResponse")
StatusProto = _cls("tensorflow.serving.StatusProto")
ModelVersionStatus = _cls("tensorflow.serving.ModelVersionStatus")
GetModelStatusRequest = _cls("tensorflow.serving.GetModelStatusRequest")
GetModelStatusResponse = _cls("tensorflow.serving.GetModelStatusResponse")

DataType = POOL.FindEnumTypeByName("tensorflow.DataType")
ModelState = POOL.FindEnumTypeByName("tensorflow.serving.ModelVersionStatus.State")

# gRPC method paths: (full path, request class, response class).
PREDICT = (f"/{PREDICTION_SERVICE}/Predict", PredictRequest, PredictResponse)
GET_MODEL_METADATA = (f"/{PREDICTION_SERVICE}/GetModelMetadata", GetModelMetadataRequest, GetModelMetadataResponse)
GET_MODEL_STATUS = (f"/{MODEL_SERVICE}/GetModelStatus", GetModelStatusRequest, GetModelStatusResponse)
# Path only: its messages (ReloadConfigRequest holds a whole ModelServerConfig) are TF Serving's own, used by
# vswin.serving.rollout.ServerControl, which has tensorflow_serving installed anyway.
HANDLE_RELOAD_CONFIG = f"/{MODEL_SERVICE}/HandleReloadConfigRequest"
