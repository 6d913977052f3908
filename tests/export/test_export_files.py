"""What an export leaves on disk: warmup records, metadata, versions written atomically."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import pytest
import tensorflow as tf
from tensorflow.python.saved_model import loader_impl

import vswin.model
from tests.conftest import build_nano
from vswin.cli import main
from vswin.export import export_model
from vswin.export.versions import VersionExistsError, next_version, versions
from vswin.export.warmup import read_warmup

pytestmark = pytest.mark.slow  # exports


def test_warmup_records_parse_and_name_real_signatures(micro_export):
    logs = read_warmup(micro_export / "1" / "assets.extra" / "tf_serving_warmup_requests")
    saved = loader_impl.parse_saved_model(str(micro_export / "1")).meta_graphs[0].signature_def
    signatures = {name for name in saved if not name.startswith("__")}  # as loaded: no __saved_model_init_op
    seen = set()
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == "vswin_micro"
        assert request.model_spec.signature_name in signatures
        frames = tf.make_ndarray(request.inputs["frames"])
        assert frames.dtype == "uint8" and frames.shape[1:] == (16, 64, 64, 3)
        seen.add((request.model_spec.signature_name, frames.shape[0]))
    frame_signatures = {"serving_default", "features_graph", "feature_map", "classify"}
    # serving_default at every warmup size; the others share its forward pass and are warmed once
    assert seen == {("serving_default", 1), ("serving_default", 2)} | {(name, 1) for name in frame_signatures}
    assert len(logs) == len(seen)


def test_metadata_is_complete(micro_export, micro_checkpoint):
    data = json.loads((micro_export / "1" / "assets.extra" / "vswin.json").read_text())
    assert data["architecture"]["name"] == "vswin_micro_w877"
    assert data["checkpoint"]["sha256"] == hashlib.sha256(micro_checkpoint.read_bytes()).hexdigest()
    assert data["checkpoint"]["path"] == str(micro_checkpoint.resolve()) and data["checkpoint"]["random_weights"] is False
    assert (data["model_name"], data["version"], data["labels"]) == ("vswin_micro", 1, None)
    assert data["family"] == "video" and data["warmup_batch_sizes"] == [1, 2]
    preprocessing = data["preprocessing"]
    assert (preprocessing["clip_len"], preprocessing["size"], preprocessing["frame_interval"]) == (16, 64, 2)
    assert data["clip"] == {"clip_len": 16, "height": 64, "width": 64, "channels": 3, "input_dtype": "uint8",
                            "color": "RGB"}
    assert preprocessing["mean"] == list(vswin.model.MEAN) and preprocessing["std"] == list(vswin.model.STD)
    assert data["features_dim"] == 192 and data["num_classes"] == 10
    assert data["precision"] == "float32" and data["default_signature"] == "xla"
    assert data["versions"]["tensorflow"] == tf.__version__
    assert data["versions"]["vswin-serving"] == vswin.__version__
    assert set(data["signatures"]) == {"serving_default", "features_graph", "features_float", "feature_map",
                                       "classify", "metadata"}
    assert data["exported_at"].endswith("Z")


@pytest.fixture(scope="module")
def nano_model(nano_arch):
    """What the tests of versions and interruptions export: files and numbers on disk, not features."""
    return build_nano(nano_arch)


def test_versions_are_numbered_and_never_silently_replaced(tmp_path, nano_model, micro_export):
    base = tmp_path / "models"
    shutil.copytree(micro_export / "1", base / "m" / "1")
    (base / "m" / ".staging-9-dead").mkdir()  # leftovers of an interrupted export are not versions
    assert versions(base / "m") == [1] and next_version(base / "m") == 2
    with pytest.raises(VersionExistsError, match="pass --overwrite"):
        export_model(nano_model, base, "m", version=1, frames=2, size=(64, 64))
    path = export_model(nano_model, base, "m", frames=2, size=(32, 32), labels=[f"c{i}" for i in range(10)])
    assert path == base / "m" / "2"
    assert tf.saved_model.load(str(path)).signatures["classify"](
        frames=tf.zeros((1, 2, 32, 32, 3), tf.uint8))["top_k_labels"].numpy()[0, 0].decode().startswith("c")
    replaced = export_model(nano_model, base, "m", version=1, frames=2, size=(32, 32), overwrite=True)
    assert json.loads((replaced / "assets.extra" / "vswin.json").read_text())["clip"]["clip_len"] == 2
    assert sorted(p.name for p in (base / "m").iterdir() if not p.name.startswith(".staging-9")) == ["1", "2"]


def test_interrupted_export_leaves_no_version(tmp_path, nano_model, monkeypatch):
    from vswin.export import warmup

    def fail(*args, **kwargs):
        raise KeyboardInterrupt("simulated interruption")

    monkeypatch.setattr(warmup, "write_warmup", fail)
    with pytest.raises(KeyboardInterrupt):
        export_model(nano_model, tmp_path, "m", version=3, frames=2, size=(32, 32))
    assert list((tmp_path / "m").iterdir()) == []


def test_label_count_must_match_the_head(tmp_path, nano_model):
    with pytest.raises(ValueError, match="3 labels.*10 classes"):
        export_model(nano_model, tmp_path, "m", frames=2, size=(32, 32), labels=["a", "b", "c"])
    assert not (tmp_path / "m").exists() or list((tmp_path / "m").iterdir()) == []


def test_bad_checkpoint_fails_before_writing(tmp_path, micro_checkpoint, capsys):
    code = main(["export", "--checkpoint", str(micro_checkpoint), "--arch",
                 "swin_tiny_patch244_window877_kinetics400_1k", "--out", str(tmp_path / "models"), "--name", "m"])
    assert code == 1
    assert "backbone.patch_embed.proj.weight" in capsys.readouterr().err
    assert not (tmp_path / "models").exists()


def test_concurrent_exports_without_a_version_take_distinct_numbers(tmp_path, nano_model, nano_arch, subprocess_env,
                                                                   monkeypatch):  # fmt: skip
    """`vswin export` in another process runs whole while an export here holds version 1 (reserved, staged):
    it takes 2, and the live export's reservation is neither reused nor cleaned up as a dead one's."""
    from vswin.export import warmup

    command = [sys.executable, "-m", "vswin", "export", "--random-weights", "--arch", str(nano_arch),
               "--out", str(tmp_path), "--name", "m", "--frames", "2", "--size", "32"]  # fmt: skip
    other = []
    write_warmup = warmup.write_warmup

    def write_while_the_other_exports(*args, **kwargs):
        other.append(subprocess.run(command, env=subprocess_env, capture_output=True, text=True, timeout=600))
        return write_warmup(*args, **kwargs)

    monkeypatch.setattr(warmup, "write_warmup", write_while_the_other_exports)
    assert export_model(nano_model, tmp_path, "m", frames=2, size=(32, 32)) == tmp_path / "m" / "1"
    assert other[0].returncode == 0, other[0].stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["1", "2"]
    for version in ("1", "2"):
        meta = json.loads((tmp_path / "m" / version / "assets.extra" / "vswin.json").read_text())
        assert meta["version"] == int(version)
        assert "serving_default" in tf.saved_model.load(str(tmp_path / "m" / version)).signatures


def test_reserved_versions_are_distinct_under_concurrency(tmp_path):
    import threading

    from vswin.export.versions import reserved_version

    base = tmp_path / "m"
    (base / "3").mkdir(parents=True)
    numbers, all_reserved = [], threading.Barrier(6)

    def reserve() -> None:
        with reserved_version(base, None) as number:
            numbers.append(number)
            all_reserved.wait(30)  # every hold is taken at once

    threads = [threading.Thread(target=reserve) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(numbers) == [4, 5, 6, 7, 8, 9]
    assert [p.name for p in base.iterdir()] == ["3"]  # holds released
    with reserved_version(base, 2) as explicit:
        assert explicit == 2 and next_version(base) == 4
