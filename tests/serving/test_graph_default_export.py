"""An export made with `--default-signature graph` loads, warmup on, on a server that cannot compile XLA.

That is the documented fallback for such servers, so its warmup file must not hold
requests for the one XLA signature it keeps (`features_xla`).
"""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import tensorflow as tf

from tests.serving.requests import config_for, predict_request, states, status_request
from vswin.export.warmup import WARMUP_FILE, read_warmup

pytestmark = pytest.mark.slow  # exports and serves


FEATURES_DIM = 48  # the nano architecture's


@pytest.fixture(scope="module")
def graph_default_export(tmp_path_factory, nano_arch):
    """The nano architecture exported with the graph default (the export's signatures and warmup are under test,
    not the model: parity of the XLA and graph passes of the micro checkpoint is tests/export/test_signatures.py's)."""
    from tests.conftest import build_nano
    from vswin.export import export_model

    base = tmp_path_factory.mktemp("models")
    export_model(build_nano(nano_arch), base, "tiny", version=1, frames=2, size=(32, 32), batch_sizes=(1,),
                 default_signature="graph")  # fmt: skip
    return base / "tiny"


def test_warmup_leaves_out_the_xla_signature(graph_default_export):
    logs = read_warmup(graph_default_export / "1" / "assets.extra" / WARMUP_FILE)
    signatures = {log.predict_log.request.model_spec.signature_name for log in logs}
    assert signatures == {"serving_default", "feature_map", "classify"}


def test_loads_with_warmup_and_no_xla_and_serves_the_graph_signatures(graph_default_export, start_server, stubs):
    server = start_server(config_for(graph_default_export), enable_model_warmup=True)
    predict, models = stubs(server)
    assert states(models.GetModelStatus(status_request("tiny"), timeout=60)) == {1: "AVAILABLE"}
    frames = np.random.default_rng(0).integers(0, 256, size=(1, 2, 32, 32, 3), dtype=np.uint8)
    features = tf.make_ndarray(predict.Predict(predict_request("tiny", {"frames": frames}), timeout=60).outputs["features"])
    assert features.shape == (1, FEATURES_DIM) and np.isfinite(features).all()
    with pytest.raises(grpc.RpcError) as caught:  # the XLA variant needs --xla_cpu_compilation_enabled
        predict.Predict(predict_request("tiny", {"frames": frames}, "features_xla"), timeout=60)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "XLA compilation disabled" in caught.value.details()


def test_every_signature_runs_through_the_tf1_session_loader(graph_default_export):
    """TF Serving's restore-then-run-by-tensor-name path, on the graph-default export."""
    from vswin.model import SwinPreprocessor

    frames = np.random.default_rng(1).integers(0, 256, size=(2, 2, 32, 32, 3), dtype=np.uint8)
    clips = np.asarray(SwinPreprocessor()(frames))
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(graph_default_export / "1"))
        served = {name: sig for name, sig in meta_graph.signature_def.items() if not name.startswith("__")}
        assert set(served) == {"serving_default", "features_xla", "features_float", "feature_map", "classify",
                               "metadata"}
        results = {}
        for name, signature in served.items():
            inputs = {"clips": clips, "frames": frames, "row": np.zeros(2, np.int32)}
            feeds = {tensor.name: inputs[key] for key, tensor in signature.inputs.items()}
            results[name] = session.run({key: t.name for key, t in signature.outputs.items()}, feed_dict=feeds)
    graph = results["serving_default"]["features"]
    assert graph.shape == (2, FEATURES_DIM)
    for name in ("features_xla", "features_float"):
        assert np.abs(results[name]["features"] - graph).max() <= 1e-4, name
    assert results["feature_map"]["feature_map"].shape[0] == 2
    assert results["classify"]["top_k_classes"].shape[0] == 2
