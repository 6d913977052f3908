"""tf.train.Example without TensorFlow: the six messages of TF's example.proto/feature.proto, from descriptors.

Built in a private DescriptorPool under TF's full names (as vswin.client.protos
does for TF Serving's messages), so the bytes are TF's own and the remote
mode's workers can write TFRecords without importing TensorFlow; the tests
parse them with tf.train.Example.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto


def _list_message(name: str, ftype: int) -> descriptor_pb2.DescriptorProto:
    message = descriptor_pb2.DescriptorProto(name=name)
    message.field.add(name="value", number=1, type=ftype, label=_F.LABEL_REPEATED)
    return message


def _build() -> dict[str, type]:
    file = descriptor_pb2.FileDescriptorProto(name="vswin/beam/example.proto", package="tensorflow", syntax="proto3")
    file.message_type.extend([
        _list_message("BytesList", _F.TYPE_BYTES),
        _list_message("FloatList", _F.TYPE_FLOAT),
        _list_message("Int64List", _F.TYPE_INT64),
    ])
    feature = file.message_type.add(name="Feature")
    feature.oneof_decl.add(name="kind")
    for number, (name, kind) in enumerate((("bytes_list", "BytesList"), ("float_list", "FloatList"),
                                           ("int64_list", "Int64List")), 1):
        feature.field.add(name=name, number=number, type=_F.TYPE_MESSAGE, type_name=f".tensorflow.{kind}",
                          label=_F.LABEL_OPTIONAL, oneof_index=0)
    features = file.message_type.add(name="Features")
    entry = features.nested_type.add(name="FeatureEntry")
    entry.field.add(name="key", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=_F.TYPE_MESSAGE, type_name=".tensorflow.Feature",
                    label=_F.LABEL_OPTIONAL)
    entry.options.map_entry = True
    features.field.add(name="feature", number=1, type=_F.TYPE_MESSAGE, type_name=".tensorflow.Features.FeatureEntry",
                       label=_F.LABEL_REPEATED)
    example = file.message_type.add(name="Example")
    example.field.add(name="features", number=1, type=_F.TYPE_MESSAGE, type_name=".tensorflow.Features",
                      label=_F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.{name}"))
            for name in ("Example", "Feature")}


_CLASSES = _build()
Example = _CLASSES["Example"]


def encode(fields: dict[str, list[bytes] | list[float] | list[int]], floats: frozenset[str]) -> bytes:
    """A serialized Example: str/bytes values as bytes_list, names in `floats` as float_list, others int64_list."""
    example = Example()
    for name, values in fields.items():
        feature = example.features.feature[name]
        if name in floats:
            feature.float_list.value.extend(values)
        elif values and isinstance(values[0], (bytes, str)):
            feature.bytes_list.value.extend(v.encode() if isinstance(v, str) else v for v in values)
        else:
            feature.int64_list.value.extend(values)
    return example.SerializeToString()


def decode(record: bytes) -> dict[str, list]:
    """Feature name -> its values (bytes, floats or ints)."""
    example = Example.FromString(record)
    out = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        out[name] = list(getattr(feature, kind).value) if kind else []
    return out
