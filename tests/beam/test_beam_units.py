"""The pieces of vswin.beam that need no model: the remote model's pinning, bound and retries, assembly,
output planning, inputs and the command line."""

from __future__ import annotations

import shutil
import threading

import grpc
import numpy as np
import pytest

from tests.tiny_exports import TinyServer, expected_features, tiny_config
from vswin import contract
from vswin.beam.assemble import outcome
from vswin.beam.elements import Failure, FileMeta, ViewFeatures, row_info
from vswin.beam.inputs import as_pattern, is_list_file, list_entries
from vswin.beam.inprocess import padded_size
from vswin.beam.models import RemoteModel, info_from_metadata
from vswin.beam.remote import ServedModel, is_transient
from vswin.beam.sinks import DEFAULT_SHARDS, FORMATS, existing_shards, plan_output
from vswin.client.errors import DeadlineExceeded, InvalidInput, ServerUnavailable
from vswin.beam import examples
from vswin.client.extract import ExtractOptions, ImageResult

PREDICT, DEFAULT = "Predict", contract.SERVING_DEFAULT


def views(count: int, value: int = 7) -> np.ndarray:
    return np.full((count, 4, 32, 32, 3), value, np.uint8)


def _versions(serving) -> list[int]:
    return [r.model_spec.version.value for r in serving.faults.requests(PREDICT, DEFAULT)]


def test_remote_model_pins_the_latest_version_and_reports_it(serving):
    model = ServedModel(RemoteModel(serving.target, "fake"))
    features, version = model.features(views(3))
    assert version == 2
    np.testing.assert_array_equal(features, expected_features(views(3)))
    assert set(_versions(serving)) == {2}


def test_remote_model_resolves_a_label_once(serving):
    model = ServedModel(RemoteModel(serving.target, "fake", label="stable"))
    assert model.features(views(1))[1] == 1
    assert _versions(serving) == [1]


def test_remote_model_follows_a_rollout_when_its_version_goes_away(tmp_path, tiny_exports):
    base = tmp_path / "models"
    shutil.copytree(tiny_exports / "fake", base / "fake")
    server = TinyServer(tiny_config(base, ("fake",)))
    try:
        model = ServedModel(RemoteModel(server.target, "fake"))
        assert model.features(views(1))[1] == 2
        shutil.copytree(base / "fake" / "2", base / "fake" / "3")
        rollout = tiny_config(base, ("fake",))
        entry = rollout.model_config_list.config[0]
        entry.ClearField("version_labels")
        entry.model_version_policy.specific.ClearField("versions")
        entry.model_version_policy.specific.versions.append(3)
        server.server.reload(rollout)  # version 2 unloaded, 3 serving
        features, version = model.features(views(2))
    finally:
        server.stop()
    assert version == 3 and features.shape == (2, 8)


def test_remote_model_retries_unavailable_and_resource_exhausted(serving):
    serving.faults.fail(PREDICT, grpc.StatusCode.UNAVAILABLE, signature=DEFAULT)
    serving.faults.fail(PREDICT, grpc.StatusCode.RESOURCE_EXHAUSTED, signature=DEFAULT)
    model = ServedModel(RemoteModel(serving.target, "fake", version=1))
    assert model.features(views(1))[1] == 1
    assert len(_versions(serving)) == 3


def test_remote_model_bounds_the_requests_in_flight_of_a_process(serving):
    serving.faults.delay(PREDICT, 0.5, signature=DEFAULT)
    model = ServedModel(RemoteModel(serving.target, "fake", version=1, max_in_flight=2))
    threads = [threading.Thread(target=model.features, args=(views(1),)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(_versions(serving)) == 6
    assert serving.faults.peak[PREDICT] == 2


def test_only_transient_errors_retry_a_batch():
    assert is_transient(ServerUnavailable("down")) and is_transient(DeadlineExceeded("slow"))
    assert not is_transient(InvalidInput("bad shape")) and not is_transient(ValueError("bug"))


def _metadata(**changes) -> dict:
    """A video export's vswin.json, as much of it as the pipeline reads."""
    preprocessing = contract.video_preprocessing(clip_len=4, size=32, sampling="segments", num_clips=2, num_crops=1)
    return {"model_name": "m", "version": 3, "family": "video", "clip": {"clip_len": 4, "height": 32, "width": 32},
            "preprocessing": preprocessing.to_dict(), "features_dim": 3, "labels": ["a", "b"],
            "signatures": ["serving_default", "features_graph"], **changes}


def _meta(key: str = "v.mp4", clips: int = 2) -> FileMeta:
    info = row_info(info_from_metadata(_metadata(), DEFAULT))
    return FileMeta(key, info, clips, np.arange(clips * 4).reshape(clips, 4), 100, 25.0)


def _views(key: str = "v.mp4", count: int = 2, versions=(1, 1)) -> list[ViewFeatures]:
    return [ViewFeatures(key, i, np.full(3, i, np.float32), versions[i]) for i in range(count)]


def test_assembly_pools_views_like_the_client():
    result = outcome("v.mp4", [_meta()], _views()[::-1], [], ExtractOptions(crops=1))
    assert (result.video, result.model, result.version) == ("v.mp4", "m", 1)
    np.testing.assert_array_equal(result.clip_features[:, 0, 0], [0, 1])
    np.testing.assert_allclose(result.features, [0.5, 0.5, 0.5])
    np.testing.assert_allclose(result.clip_starts, [0, 0.16])


def test_assembly_records_the_exports_sampling_for_settings_the_options_leave_unset():
    result = outcome("v.mp4", [_meta()], _views(), [], ExtractOptions())
    assert (result.options.sampling, result.options.clips, result.options.crops) == ("segments", 2, 1)
    assert result.to_json()["sampling"] == "segments" and result.signature == DEFAULT


def test_an_image_assembles_to_one_row_of_one_view_without_a_time():
    metadata = _metadata(family="image", image={"height": 32, "width": 32}, clip=None,
                         preprocessing=contract.image_preprocessing(32).to_dict())
    meta = FileMeta("a.png", row_info(info_from_metadata(metadata, DEFAULT)), 1, image_size=(40, 90))
    result = outcome("a.png", [meta], _views("a.png", 1), [], ExtractOptions())
    assert isinstance(result, ImageResult)
    assert (result.image, result.version, result.height, result.width) == ("a.png", 1, 40, 90)
    assert result.preprocessing == contract.image_preprocessing(32)
    row = FORMATS["parquet"].encode(result)
    assert (row["key"], row["clip_starts"], row["features"], row["clip_features"]) == ("a.png", [], [0, 0, 0],
                                                                                      [[[0, 0, 0]]])
    example = examples.decode(FORMATS["tfrecord"].encode(result))
    assert example["clip_starts"] == [] and example["clip_features_shape"] == [1, 1, 3]


def test_assembly_turns_mixed_versions_and_missing_views_into_failures():
    mixed = outcome("v.mp4", [_meta()], _views(versions=(1, 2)), [], ExtractOptions(crops=1))
    assert isinstance(mixed, Failure) and mixed.stage == "assemble" and "[1, 2]" in mixed.error
    missing = outcome("v.mp4", [_meta()], _views()[:1], [], ExtractOptions(crops=1))
    assert isinstance(missing, Failure) and "1 of 2 views" in missing.error


def test_assembly_reports_the_earliest_stage_that_failed():
    failures = [Failure("v.mp4", "inference", "b"), Failure("v.mp4", "decode", "a")]
    assert outcome("v.mp4", [], _views()[:1], failures, ExtractOptions()) == failures[1]


def test_output_plan_keeps_one_set_of_shard_names(tmp_path):
    prefix = str(tmp_path / "feats")
    assert plan_output(prefix, ".parquet", None, skip_existing=True) == plan_output(prefix, ".parquet", None, False)
    assert plan_output(prefix, ".parquet", None, False).num_shards == DEFAULT_SHARDS
    for name in ("feats-00000-of-00002.parquet", "feats-00001-of-00002.parquet",
                 "feats-failed-00000-of-00001.jsonl", "featsx-00000-of-00001.parquet"):
        (tmp_path / name).write_bytes(b"")
    assert sorted(existing_shards(prefix, ".parquet").values()) == [2, 2]
    resumed = plan_output(prefix, ".parquet", None, skip_existing=True)
    assert resumed.num_shards == 2 and len(resumed.carried) == 2
    assert plan_output(prefix, ".parquet", 2, skip_existing=False).carried == ()
    with pytest.raises(ValueError, match="holds 2 shard"):
        plan_output(prefix, ".parquet", 4, skip_existing=False)
    (tmp_path / "feats-00000-of-00003.parquet").write_bytes(b"")
    with pytest.raises(ValueError, match="side by side"):
        plan_output(prefix, ".parquet", None, skip_existing=True)


def test_inputs_are_globs_folders_or_list_files(tmp_path):
    assert is_list_file("videos.txt") and is_list_file("gs://b/videos.list") and not is_list_file("v/*.mp4")
    assert as_pattern(str(tmp_path)) == f"{tmp_path}/*" and as_pattern("gs://b/videos/") == "gs://b/videos/*"
    assert as_pattern("gs://b/v/*.mp4") == "gs://b/v/*.mp4"
    assert [e for line in ["  a.mp4 ", "", "# note", "gs://b/c.mp4"] for e in list_entries(line)] == [
        "a.mp4", "gs://b/c.mp4"]


def test_inference_batches_pad_to_the_batch_plan():
    assert [padded_size(n) for n in (1, 2, 3, 5, 8, 9)] == [1, 2, 4, 8, 8, 9]


def test_export_metadata_gives_the_geometry_and_the_preprocessing():
    info = info_from_metadata(_metadata(clip={"clip_len": 16, "height": 64, "width": 48}), "features_graph")
    assert (info.name, info.version, info.clip_shape, info.feature_dim) == ("m", 3, (16, 64, 48), 3)
    assert (info.family, info.input.name, info.preprocessing.sampling) == ("video", "frames", "segments")
    with pytest.raises(ValueError, match="no signature 'features_xla'"):
        info_from_metadata(_metadata(), "features_xla")
    legacy = {key: value for key, value in _metadata().items() if key not in ("family", "preprocessing")}
    legacy = info_from_metadata(legacy, DEFAULT)  # an export written before either was recorded
    assert (legacy.family, legacy.preprocessing) == ("video", contract.video_preprocessing(clip_len=4, size=32))

    image = info_from_metadata(_metadata(family="image", image={"height": 48, "width": 48}, clip=None), DEFAULT)
    assert (image.family, image.input.name, image.view_shape) == ("image", "images", (48, 48, 3))


def test_files_carry_the_called_signature_and_the_export_without_its_labels():
    info = row_info(info_from_metadata(_metadata(), DEFAULT))
    assert list(info.signatures) == [DEFAULT] and "labels" not in info.export
    assert info.export["preprocessing"]["sampling"] == "segments"


def test_models_take_only_signatures_of_frames_to_features():
    with pytest.raises(ValueError, match="uint8 frames"):
        RemoteModel("localhost:8500", "m", signature="classify")


@pytest.mark.parametrize("argv, message", [
    (["beam", "--inputs", "v/", "--output", "o", "--server", "localhost:1"], "--server needs --model"),
    (["beam", "--inputs", "v/", "--output", "o", "--savedmodel", "m/1", "--model", "m"], "go with --server"),
])
def test_cli_rejects_incomplete_model_choices(argv, message, capsys):
    from vswin.cli import main

    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_cli_hands_unknown_options_only_to_beam(capsys):
    from vswin.cli import build_parser, main

    with pytest.raises(SystemExit):
        main(["extract", "v.mp4", "--server", "s:1", "--model", "m", "--out", "o", "--runner", "DataflowRunner"])
    assert "unrecognized arguments: --runner DataflowRunner" in capsys.readouterr().err
    args, extra = build_parser().parse_known_args(
        ["beam", "--inputs", "v/", "--output", "o", "--server", "s:1", "--model", "m", "--runner", "DataflowRunner",
         "--direct_num_workers", "2", "--clips", "2"])
    assert extra == ["--runner", "DataflowRunner", "--direct_num_workers", "2"] and args.clips == 2


def test_a_batch_the_server_rejects_fails_its_video_and_the_other_completes_unthrottled(serving, real_videos):
    import apache_beam as beam
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.testing.util import assert_that

    from vswin.beam import ExtractFeatures

    serving.faults.fail(PREDICT, grpc.StatusCode.INVALID_ARGUMENT, signature=DEFAULT)  # the first only; never retried
    uris = [str(real_videos["bikes"]), str(real_videos["bigbuckbunny"])]

    def one_failure(failures):
        assert len(failures) == 1 and failures[0].key in uris, failures
        assert failures[0].stage == "inference" and "INVALID_ARGUMENT" in failures[0].error

    def one_row(results):
        assert len(results) == 1 and results[0].video in uris and results[0].clip_features.shape == (2, 3, 8)

    pipeline = beam.Pipeline()
    out = (pipeline | beam.Create(uris)
           | ExtractFeatures(RemoteModel(serving.target, "fake", max_batch=4), ExtractOptions(clips=2, crops=3)))
    assert_that(out.failed, one_failure, label="failed")
    assert_that(out.rows, one_row, label="rows")
    result = pipeline.run()
    result.wait_until_finish()
    # A rejected batch is an answer, not overload: Beam's throttler delays none of the next two batches.
    throttled = result.metrics().query(MetricsFilter().with_name("cumulativeThrottlingSeconds"))["counters"]
    assert sum(counter.committed or 0 for counter in throttled) == 0, throttled
