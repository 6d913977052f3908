"""The in-process baseline: the load generator calling a SavedModel's signatures in this process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vswin.bench.loadgen import LoadSettings, closed_loop
from vswin.bench.payload import ClipPool, random_clips
from vswin.bench.transport import SavedModelTransport

CLIP = (2, 8, 8)


@pytest.fixture(scope="module")
def toy_export(tmp_path_factory):
    """A SavedModel with the export contract's input specs: uint8 `frames` and float32 `clips` -> `features`."""
    import tensorflow as tf

    class Toy(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, *CLIP, 3], tf.uint8, name="frames")])
        def serve(self, frames):
            return {"features": tf.reduce_mean(tf.cast(frames, tf.float32), axis=[1, 2, 3])}

        @tf.function(input_signature=[tf.TensorSpec([None, *CLIP, 3], tf.float32, name="clips")])
        def serve_float(self, clips):
            return {"features": tf.reduce_mean(clips, axis=[1, 2, 3])}

    toy = Toy()
    path = tmp_path_factory.mktemp("export") / "vswin_bench" / "1"  # the model name comparisons.py serves
    tf.saved_model.save(toy, str(path), signatures={"serving_default": toy.serve, "features_float": toy.serve_float})
    (path / "assets.extra").mkdir()
    (path / "assets.extra" / "vswin.json").write_text(json.dumps({"arch": "toy", "frames": CLIP[0]}))
    return path


def test_inprocess_transport_reads_geometry_and_export_metadata(toy_export):
    transport = SavedModelTransport(toy_export)
    assert transport.input.name == "frames" and transport.input.dtype == "uint8"
    assert transport.input.clip_shape == CLIP
    meta = transport.metadata()
    assert meta["export"] == {"arch": "toy", "frames": CLIP[0]}
    assert meta["signatures"] == ["features_float", "serving_default"]
    timings = transport.send(random_clips(CLIP, 2))
    assert timings.round_trip_s > 0 and timings.request_bytes == 2 * 2 * 8 * 8 * 3


def test_float_signature_takes_four_times_the_bytes(toy_export):
    transport = SavedModelTransport(toy_export, "features_float")
    assert transport.input.dtype == "float32"
    pool = ClipPool(random_clips(CLIP, 2), transport.input.dtype)
    assert transport.send(pool.batch(2)).request_bytes == 4 * 2 * 2 * 8 * 8 * 3


def test_transports_of_one_export_share_one_loaded_copy(toy_export):
    frames, floats = SavedModelTransport(toy_export), SavedModelTransport(toy_export / ".." / "1", "features_float")
    assert frames._loaded is floats._loaded  # loaded once: (c) and (d) of comparisons.py hold two transports


def test_load_against_a_savedmodel_counts_add_up(toy_export):
    transport = SavedModelTransport(toy_export)
    settings = LoadSettings(batch_size=2, measurement_interval_s=0.2, warmup_s=0.05, max_trials=3, stability_pct=100)
    result = closed_loop(transport, ClipPool(random_clips(CLIP, 3)), 2, settings)
    assert result.errors_total == 0 and result.ok_total == result.sent_total > 0
    assert result.clips_per_s > 0 and np.isfinite(result.latency_ms.p99)


def test_unknown_signature_is_named(toy_export):
    with pytest.raises(ValueError, match="no signature 'features_graph'"):
        SavedModelTransport(toy_export, "features_graph")


def test_comparison_script_records_payload_bytes_and_ratios(toy_export, subprocess_env, tmp_path):
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "scenarios" / "comparisons.py"
    command = [
        sys.executable, str(script), "--export-base", str(toy_export.parents[1]), "--in-process", "--only", "d",
        "--rounds", "1", "--interval-s", "0.2", "--max-trials", "3", "--warmup-s", "0.1", "--batch-size", "2",
        "--out", str(tmp_path), "--name", "cmp",
    ]  # fmt: skip
    done = subprocess.run(command, env=subprocess_env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads((tmp_path / "cmp.json").read_text())
    (comparison,) = document["comparisons"]
    summary = comparison["summary"]
    assert comparison["key"] == "d" and summary["a"] == "uint8 frames" and summary["b"] == "float32 clips"
    assert summary["ratios_b_over_a"]["request_bytes"] == 4.0
    assert summary["arms"]["uint8 frames"]["errors"] == 0
    assert document["model"]["export"]["arch"] == "toy" and document["servers"] == {}
    assert (tmp_path / "cmp.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
def test_load_against_a_real_export(nano_export):
    """`vswin export` output (the nano model): the feature signatures' specs are read right, and the default
    one takes load."""
    version_dir = nano_export / "1"
    for signature, dtype in (("features_graph", "uint8"), ("features_float", "float32")):
        transport = SavedModelTransport(version_dir, signature)
        assert (transport.input.dtype, transport.input.clip_shape) == (dtype, (2, 32, 32)), signature
    transport = SavedModelTransport(version_dir)
    assert transport.metadata()["export"]["clip"]["clip_len"] == 2  # the export's vswin.json is recorded
    settings = LoadSettings(measurement_interval_s=0.3, warmup_s=0.0, max_trials=3, stability_pct=100)
    result = closed_loop(transport, ClipPool(random_clips((2, 32, 32), 2)), 1, settings)
    assert result.errors_total == 0 and result.ok_total == result.sent_total >= 1
