"""`vswin bench model`: XLA vs graph in-process on an export, whichever signature is the default."""

from __future__ import annotations

import json

import pytest

from vswin.bench.model import ratios, xla_and_graph
from vswin.cli import main


def test_pairs_the_xla_and_graph_forward_passes_of_either_default():
    assert xla_and_graph(["serving_default", "features_graph", "feature_map"]) == ("serving_default", "features_graph")
    assert xla_and_graph(["serving_default", "features_xla", "feature_map"]) == ("features_xla", "serving_default")
    with pytest.raises(ValueError, match="not a vswin export"):
        xla_and_graph(["serving_default"])


def test_ratio_is_graph_latency_over_xla_latency():
    rows = [{"signature": "x", "batch_size": 1, "latency_ms": {"p50": 50.0}},
            {"signature": "g", "batch_size": 1, "latency_ms": {"p50": 75.0}},
            {"signature": "x", "batch_size": 2, "latency_ms": {"p50": 100.0}}]  # fmt: skip
    assert ratios(rows, baseline="g", candidate="x") == {"1": 1.5}


def test_times_an_export_and_writes_its_report(micro_export, tmp_path, capsys):
    out = tmp_path / "model.json"
    assert main(["bench", "model", "--savedmodel", str(micro_export / "1"), "--batch-sizes", "1,2", "--iters", "2",
                 "--warmup", "1", "--out", str(out)]) == 0  # fmt: skip
    (export,) = json.loads(out.read_text())["exports"]
    assert export["signatures"] == {"xla": "serving_default", "graph": "features_graph"}
    assert {(r["signature"], r["batch_size"]) for r in export["results"]} == {
        (s, b) for s in ("serving_default", "features_graph") for b in (1, 2)
    }
    assert all(r["clips_per_s"] > 0 and r["latency_ms"]["max"] >= r["latency_ms"]["p50"] for r in export["results"])
    assert set(export["graph_over_xla_latency"]) == {"1", "2"}
    assert "graph/XLA latency ratio per batch" in capsys.readouterr().out


def test_a_signature_the_export_lacks_is_a_clear_error(micro_export, tmp_path, capsys):
    code = main(["bench", "model", "--savedmodel", str(micro_export / "1"), "--signature", "nope",
                 "--batch-sizes", "1", "--out", str(tmp_path / "x.json")])  # fmt: skip
    assert code == 1
    assert "has no signature 'nope'" in capsys.readouterr().err
