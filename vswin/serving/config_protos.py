"""TF Serving's BatchingParameters and MonitoringConfig messages, which the tensorflow-serving-api wheel lacks.

The wheel ships `tensorflow_serving.config.model_server_config_pb2` but not
`servables/tensorflow/session_bundle_config.proto` (BatchingParameters, read
by `--batching_parameters_file`) nor `config/monitoring_config.proto`
(`--monitoring_config_file`), and no protoc is available to generate them.
These descriptors transcribe the official .proto files (tensorflow/serving
master of 2026-07-30: same package, message, field names, numbers and types),
so `text_format` accepts and rejects exactly what `tensorflow_model_server`
does. They live in a private descriptor pool so a generated module, should
one ever be installed, cannot clash with them.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

_PACKAGE = "tensorflow.serving"
_F = descriptor_pb2.FieldDescriptorProto


def _field(name: str, number: int, kind: int, type_name: str = "", repeated: bool = False) -> _F:
    label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    field = _F(name=name, number=number, type=kind, label=label)
    if type_name:
        field.type_name = type_name
    return field


def _message(name: str, *fields: _F) -> descriptor_pb2.DescriptorProto:
    return descriptor_pb2.DescriptorProto(name=name, field=list(fields))


_INT64 = (_F.TYPE_MESSAGE, ".google.protobuf.Int64Value")

_SESSION_BUNDLE_CONFIG = descriptor_pb2.FileDescriptorProto(
    name="tensorflow_serving/servables/tensorflow/session_bundle_config.proto",
    package=_PACKAGE,
    syntax="proto3",
    dependency=["google/protobuf/wrappers.proto"],
    message_type=[
        _message(
            "BatchingParameters",
            _field("max_batch_size", 1, *_INT64),
            _field("batch_timeout_micros", 2, *_INT64),
            _field("max_enqueued_batches", 3, *_INT64),
            _field("num_batch_threads", 4, *_INT64),
            _field("thread_pool_name", 5, _F.TYPE_MESSAGE, ".google.protobuf.StringValue"),
            _field("allowed_batch_sizes", 6, _F.TYPE_INT64, repeated=True),
            _field("pad_variable_length_inputs", 7, _F.TYPE_BOOL),
            _field("enable_large_batch_splitting", 8, _F.TYPE_MESSAGE, ".google.protobuf.BoolValue"),
            _field("max_execution_batch_size", 9, *_INT64),
        )
    ],
)

_MONITORING_CONFIG = descriptor_pb2.FileDescriptorProto(
    name="tensorflow_serving/config/monitoring_config.proto",
    package=_PACKAGE,
    syntax="proto3",
    message_type=[
        _message(
            "PrometheusConfig",
            _field("enable", 1, _F.TYPE_BOOL),
            _field("path", 2, _F.TYPE_STRING),
        ),
        _message(
            "MonitoringConfig",
            _field("prometheus_config", 1, _F.TYPE_MESSAGE, f".{_PACKAGE}.PrometheusConfig"),
        ),
    ],
)

_POOL = descriptor_pool.DescriptorPool()
_POOL.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
_POOL.Add(_SESSION_BUNDLE_CONFIG)
_POOL.Add(_MONITORING_CONFIG)

BatchingParameters = message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.BatchingParameters"))
MonitoringConfig = message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.MonitoringConfig"))
