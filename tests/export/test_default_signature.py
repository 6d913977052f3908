"""`--default-signature auto`: the faster of XLA and graph, measured at export time and recorded."""

from __future__ import annotations

import json

import pytest
import tensorflow as tf

from tests.conftest import build_nano
from vswin.export import autoselect, export_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def nano_model(nano_arch):
    """The choice and its record are under test, not the features: the nano model measures and exports fast."""
    return build_nano(nano_arch)


def test_auto_serves_the_measured_winner_and_records_why(nano_model, tmp_path):
    version = export_model(nano_model, tmp_path, "m", version=1, frames=8, size=(32, 32), batch_sizes=(1,),
                           default_signature="auto")  # fmt: skip
    meta = json.loads((version / "assets.extra" / "vswin.json").read_text())
    choice = meta["default_signature_choice"]
    measurement = choice["measurement"]
    assert choice["requested"] == "auto" and measurement["device"] == "CPU"
    assert measurement["chosen"] == ("xla" if measurement["xla_s"] <= measurement["graph_s"] else "graph")
    assert meta["default_signature"] == measurement["chosen"]
    assert measurement["first_call_s"]["xla"] > 0 and isinstance(measurement["onednn_enabled"], bool)
    assert ("XLA lost" if measurement["chosen"] == "graph" else "XLA won") in choice["note"]
    alternate = "features_graph" if measurement["chosen"] == "xla" else "features_xla"
    assert alternate in tf.saved_model.load(str(version)).signatures and alternate in meta["signatures"]


def test_the_choice_follows_the_recorded_times_when_the_passes_tie(nano_model, monkeypatch):
    # Medians 80 ns apart: XLA slower by the clock, the same time to the microsecond that vswin.json records.
    from vswin.export.savedmodel import input_geometry

    xla, graph = 0.00123449, 0.00123441
    ticks = iter([xla, graph] + [xla, graph, graph, xla, xla, graph])  # first calls, then 3 rotated rounds
    monkeypatch.setattr(autoselect, "_seconds", lambda call: next(ticks))
    measurement = autoselect.measure(nano_model, input_geometry(nano_model, 8, (32, 32)), calls=3)
    assert measurement["xla_s"] == measurement["graph_s"] == 0.001234
    assert measurement["chosen"] == "xla"  # a tie keeps XLA, as recorded


def test_a_named_default_is_recorded_without_measurement(micro_export):
    meta = json.loads((micro_export / "1" / "assets.extra" / "vswin.json").read_text())
    assert meta["default_signature_choice"] == {"requested": "xla", "measurement": None}


def test_the_note_says_when_xla_loses():
    lost = {"chosen": "graph", "device": "CPU", "xla_s": 2.0, "graph_s": 1.5}
    assert autoselect.explain(lost).startswith("XLA lost on this CPU (2.000 s vs graph 1.500 s")
    assert "features_xla keeps XLA" in autoselect.explain(lost)


def test_an_unknown_default_fails_before_anything_is_written(nano_model, tmp_path):
    with pytest.raises(ValueError, match="default signature must be one of"):
        export_model(nano_model, tmp_path, "m", frames=8, size=(32, 32), default_signature="fastest")
    assert not (tmp_path / "m").exists()
