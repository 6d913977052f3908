"""Minimal on-disk SavedModels for config tests: the proto and files a validator reads, no graph."""

from __future__ import annotations

from pathlib import Path

EXPORT_SIGNATURES = ("serving_default", "features_graph", "features_float", "feature_map")


def write_version(base: Path, version: int, signatures=EXPORT_SIGNATURES, tag: str = "serve") -> Path:
    """BASE/VERSION with saved_model.pb (one MetaGraph, `tag`, `signatures`) and variables/variables.index."""
    from tensorflow.core.protobuf import saved_model_pb2

    target = base / str(version)
    (target / "variables").mkdir(parents=True)
    (target / "variables" / "variables.index").write_bytes(b"")
    saved_model = saved_model_pb2.SavedModel()
    graph = saved_model.meta_graphs.add()
    graph.meta_info_def.tags.append(tag)
    for name in signatures:
        graph.signature_def[name].method_name = "tensorflow/serving/predict"
    (target / "saved_model.pb").write_bytes(saved_model.SerializeToString())
    return target
