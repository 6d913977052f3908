"""`vswin beam` end to end on the DirectRunner: remote (multi-process, no TensorFlow) and in-process inference
(multi-process, one shared model), dead letters, --skip-existing, the Parquet schema and the TFRecord option.

The two multi-process jobs run once each (module fixtures); the tests below check their outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.beam.conftest import SAMPLING_FLAGS, BeamRun, read_failures, read_rows, run_beam, video_folder
from tests.conftest import MICRO_MODEL_NAME

pytestmark = pytest.mark.slow

MULTI_PROCESS = ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, real_videos) -> Path:
    """The module's videos, two good and two bad; read-only for the tests."""
    return video_folder(tmp_path_factory.mktemp("videos"), real_videos)


@pytest.fixture(scope="module")
def remote(served, folder, tmp_path_factory, tensorflow_blocked) -> BeamRun:
    """The folder through the served model, on two worker processes that cannot import TensorFlow, in 2 shards."""
    env, _ = tensorflow_blocked
    return run_beam(["--inputs", str(folder), "--server", served, "--model", MICRO_MODEL_NAME, *SAMPLING_FLAGS,
                     "--num-shards", "2", *MULTI_PROCESS], env, tmp_path_factory.mktemp("remote"))


@pytest.fixture(scope="module")
def in_process(micro_export, folder, tmp_path_factory, beam_env) -> BeamRun:
    """The folder's good videos through the export loaded once (--model-copies 1) for two worker processes."""
    return run_beam(["--inputs", str(folder / "b*.mp4"), "--savedmodel", str(micro_export / "1"), *SAMPLING_FLAGS,
                     "--model-copies", "1", *MULTI_PROCESS], beam_env, tmp_path_factory.mktemp("in_process"))


def assert_rows_match(rows: dict[str, dict], expected: dict, videos: Path, version: int = 1) -> None:
    """Each row equals VideoSwinClient.extract of the same video within 1e-5."""
    assert set(rows) == {str(videos / f"{name}.mp4") for name in expected}
    for name, result in expected.items():
        row = rows[str(videos / f"{name}.mp4")]
        assert (row["model"], row["version"]) == (MICRO_MODEL_NAME, version)
        np.testing.assert_allclose(np.array(row["features"]), result.features, atol=1e-5, rtol=0)
        np.testing.assert_allclose(np.array(row["clip_features"]), result.clip_features, atol=1e-5, rtol=0)
        np.testing.assert_allclose(row["clip_starts"], result.clip_starts, atol=1e-9)


def test_remote_mode_on_two_worker_processes_matches_the_client_without_tensorflow(
    remote, expected, folder, tensorflow_blocked
):
    _, tensorflow_imports = tensorflow_blocked
    assert remote.process.returncode == 1, remote.process.stderr[-3000:]  # the job finished; two videos failed
    assert not tensorflow_imports.exists(), tensorflow_imports.read_text()[:3000]
    assert_rows_match(read_rows(remote.prefix), expected, folder)


def test_output_is_deterministic_shards_with_the_parquet_schema(remote):
    import pyarrow as pa
    import pyarrow.parquet as pq

    assert sorted(p.name for p in remote.prefix.parent.iterdir()) == [
        "feats-00000-of-00002.parquet", "feats-00001-of-00002.parquet", "feats-failed-00000-of-00001.jsonl"]
    schema = pq.read_schema(remote.prefix.parent / "feats-00000-of-00002.parquet")
    assert schema.remove_metadata() == pa.schema([
        ("key", pa.string()), ("model", pa.string()), ("version", pa.int64()),
        ("clip_starts", pa.list_(pa.float64())), ("features", pa.list_(pa.float32())),
        ("clip_features", pa.list_(pa.list_(pa.list_(pa.float32())))),
    ])


def test_videos_that_do_not_decode_go_to_the_dead_letters_and_the_others_complete(remote, folder):
    failures = read_failures(remote.prefix)
    assert set(failures) == {str(folder / "corrupt.mp4"), str(folder / "empty.mp4")}
    assert {f["stage"] for f in failures.values()} == {"decode"}
    assert "OpenCV cannot open it" in failures[str(folder / "corrupt.mp4")]["error"]
    assert "empty" in failures[str(folder / "empty.mp4")]["error"]
    assert "2 files written, 2 failed" in remote.process.stderr


def test_counters_show_one_setup_per_worker_process_not_per_element(remote, expected):
    counters = remote.counters
    views = sum(r.num_clips for r in expected.values())
    assert counters["videos_ok"] == 2 and counters["videos_failed"] == 2 and counters["clips"] == views
    assert counters["bytes_sent"] == views * 16 * 64 * 64 * 3
    # Channels are opened once per worker process, not per element: at most one per worker for 12 views.
    assert 1 <= counters["model_setups"] <= 2 and 1 <= counters["decode_setups"] <= 2


def test_in_process_mode_shares_one_model_between_two_worker_processes(in_process, expected, folder):
    assert in_process.process.returncode == 0, in_process.process.stderr[-3000:]
    assert_rows_match(read_rows(in_process.prefix), expected, folder)
    assert read_failures(in_process.prefix) == {}
    counters = in_process.counters
    assert counters["model_setups"] == 1 and counters["requests"] >= 2  # one copy served both workers


def test_skip_existing_processes_only_the_missing_keys(served, expected, videos, tmp_path, real_videos):
    from vswin.cli import main

    listing = tmp_path / "videos.txt"
    listing.write_text(f"# two videos\n{videos / 'bikes.mp4'}\n\n{videos / 'corrupt.mp4'}\n")
    prefix = tmp_path / "out" / "feats"
    metrics = tmp_path / "m.json"
    args = ["beam", "--inputs", str(listing), "--output", str(prefix), "--server", served,
            "--model", MICRO_MODEL_NAME, *SAMPLING_FLAGS, "--metrics-json", str(metrics)]

    assert main(args) == 1
    first = read_rows(prefix)
    assert list(first) == [str(videos / "bikes.mp4")]
    assert list(read_failures(prefix)) == [str(videos / "corrupt.mp4")]

    (videos / "corrupt.mp4").write_bytes(real_videos["bigbuckbunny"].read_bytes())  # the failed video, repaired
    assert main([*args, "--skip-existing"]) == 0
    counters = json.loads(metrics.read_text())["counters"]
    assert (counters["videos_ok"], counters["videos_skipped"], counters["videos_failed"]) == (1, 1, 0)
    resumed = read_rows(prefix)
    assert set(resumed) == {str(videos / "bikes.mp4"), str(videos / "corrupt.mp4")}
    assert resumed[str(videos / "bikes.mp4")] == first[str(videos / "bikes.mp4")]
    np.testing.assert_allclose(resumed[str(videos / "corrupt.mp4")]["features"],
                               expected["bigbuckbunny"].features, atol=1e-5, rtol=0)
    assert read_failures(prefix) == {}

    assert main(args) == 0  # the same job again replaces its output: same names, no duplicates
    assert set(read_rows(prefix)) == set(resumed)
    assert sorted(p.name for p in prefix.parent.iterdir()) == [
        "feats-00000-of-00001.parquet", "feats-failed-00000-of-00001.jsonl"]

    assert main([*args, "--num-shards", "3"]) == 2  # would leave the 1-shard output beside 3 new shards


def test_tfrecord_output_parses_as_tf_train_example(served, expected, folder, tmp_path):
    import tensorflow as tf

    from vswin.cli import main

    prefix = tmp_path / "out" / "feats"
    code = main(["beam", "--inputs", str(folder / "bikes.mp4"), "--output", str(prefix), "--server", served,
                 "--model", MICRO_MODEL_NAME, *SAMPLING_FLAGS, "--format", "tfrecord"])

    assert code == 0
    records = list(tf.data.TFRecordDataset([str(prefix) + "-00000-of-00001.tfrecord"]).as_numpy_iterator())
    assert len(records) == 1
    feature = tf.train.Example.FromString(records[0]).features.feature
    result = expected["bikes"]
    assert feature["key"].bytes_list.value == [str(folder / "bikes.mp4").encode()]
    assert (feature["model"].bytes_list.value, feature["version"].int64_list.value) == ([b"vswin_micro"], [1])
    shape = list(feature["clip_features_shape"].int64_list.value)
    assert shape == list(result.clip_features.shape)
    np.testing.assert_allclose(np.reshape(feature["clip_features"].float_list.value, shape), result.clip_features,
                               atol=1e-5, rtol=0)
    np.testing.assert_allclose(feature["features"].float_list.value, result.features, atol=1e-5, rtol=0)
