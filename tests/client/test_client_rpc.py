"""VideoSwinClient against the real in-process server (tiny exports, fault hooks): metadata, preprocessing from
the export, features, errors, retries, deadlines, batch limits."""

from __future__ import annotations

import random
import threading
import time

import grpc
import numpy as np
import pytest

from tests.tiny_exports import (
    FAKE_PREPROCESSING,
    LABELS,
    TinyServer,
    expected_features,
    expected_logits,
    tiny_config,
)
from vswin import contract
from vswin.client import (
    DeadlineExceeded,
    InvalidInput,
    ModelNotFound,
    RetryPolicy,
    ServerError,
    ServerUnavailable,
    VideoSwinClient,
)

FAST_RETRY = RetryPolicy(max_attempts=4, initial_backoff=0.05, max_backoff=0.2, rng=random.Random(0))
PREDICT, DEFAULT = "Predict", contract.SERVING_DEFAULT


def _frames(batch: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (batch, 4, 32, 32, 3), dtype=np.uint8)


def _sizes(faults, signature: str = DEFAULT) -> list[int]:
    return [r.inputs[contract.FRAMES].tensor_shape.dim[0].size for r in faults.requests(PREDICT, signature)]


def _batching_file(tmp_path, max_batch_size: int):
    path = tmp_path / "batching_parameters.txt"
    path.write_text(f"max_batch_size {{ value: {max_batch_size} }}\nbatch_timeout_micros {{ value: 0 }}\n"
                    f"num_batch_threads {{ value: 2 }}\n")  # fmt: skip
    return path


def test_model_info_reads_geometry_feature_dim_and_the_exports_preprocessing_once(serving):
    with VideoSwinClient(serving.target, "fake") as client:
        info = client.model_info()
        assert (info.name, info.version, info.signature, info.family) == ("fake", 2, DEFAULT, contract.VIDEO)
        assert info.clip_shape == (4, 32, 32) and info.feature_dim == 8
        assert set(info.signatures) >= {DEFAULT, contract.CLASSIFY, contract.METADATA, contract.FEATURES_FLOAT}
        assert info.input.dtype == "DT_UINT8" and info.input.shape == (None, 4, 32, 32, 3)
        assert info.preprocessing == FAKE_PREPROCESSING and info.export["features_dim"] == 8
        client.model_info()
        assert client.model_info(contract.CLASSIFY).preprocessing == FAKE_PREPROCESSING
        client.model_info(refresh=True)
    assert len(serving.faults.calls("GetModelMetadata")) == 3
    [metadata] = serving.faults.requests(PREDICT, contract.METADATA)  # once per version
    assert metadata.model_spec.version.value == 2  # the version GetModelMetadata described, not "the latest"


def test_an_export_without_the_metadata_signature_gets_the_contracts_defaults(serving):
    with VideoSwinClient(serving.target, "legacy") as client:
        info = client.model_info()
    assert info.export is None
    assert info.preprocessing == contract.video_preprocessing(clip_len=4, size=32)
    assert serving.faults.calls(PREDICT) == []


def test_unreadable_export_metadata_is_a_server_error(serving):
    from tensorflow_serving.apis import predict_pb2

    def garbage(request):
        response = predict_pb2.PredictResponse()
        output = response.outputs[contract.METADATA_OUTPUT]
        output.dtype = 7  # DT_STRING
        output.tensor_shape.dim.add(size=1)
        output.string_val.append(b"{not json")
        return response

    serving.faults.answer(PREDICT, garbage, signature=contract.METADATA)
    with VideoSwinClient(serving.target, "fake") as client, pytest.raises(ServerError, match="cannot read"):
        client.model_info()


def test_version_and_label_select_the_version(serving):
    with VideoSwinClient(serving.target, "fake", version=1) as client:
        assert client.model_info().version == 1
    with VideoSwinClient(serving.target, "fake", label="canary") as client:
        assert client.model_info().version == 2
        client.features(_frames(1))
    assert serving.faults.requests(PREDICT, DEFAULT)[-1].model_spec.version_label == "canary"


def test_features_match_the_model_and_split_into_max_batch_requests(serving):
    frames = _frames(5)
    with VideoSwinClient(serving.target, "fake", max_batch=2) as client:
        features = client.features(frames)
    assert features.dtype == np.float32 and features.shape == (5, 8)
    np.testing.assert_array_equal(features, expected_features(frames))
    assert _sizes(serving.faults) == [2, 2, 1]
    assert all(list(r.output_filter) == ["features"] for r in serving.faults.requests(PREDICT, DEFAULT))


def test_features_read_tensor_content_responses(tiny_exports):
    server = TinyServer(tiny_config(tiny_exports, ("fake",)), enable_serialization_as_tensor_content=True)
    try:
        with VideoSwinClient(server.target, "fake") as client:
            np.testing.assert_array_equal(client.features(_frames(3)), expected_features(_frames(3)))
    finally:
        server.stop()


def test_requests_refused_by_vswin_serves_batcher_are_cut_to_its_limit(tiny_exports, tmp_path):
    server = TinyServer(tiny_config(tiny_exports, ("fake",)), enable_batching=True,
                        batching_parameters_file=str(_batching_file(tmp_path, 3)))  # fmt: skip
    try:
        frames = _frames(7)
        with VideoSwinClient(server.target, "fake", max_batch=8) as client:
            np.testing.assert_array_equal(client.features(frames), expected_features(frames))
            assert client.max_batch == 3
            np.testing.assert_array_equal(client.features(frames[:4]), expected_features(frames[:4]))
        assert _sizes(server.faults) == [7, 3, 3, 1, 3, 1]  # refused once, then the limit is remembered
    finally:
        server.stop()


def test_requests_refused_with_tf_servings_wording_are_cut_to_its_limit(serving):
    serving.faults.fail(PREDICT, grpc.StatusCode.INVALID_ARGUMENT,
                        "Task size 6 is larger than maximum input batch size 2", signature=DEFAULT)  # fmt: skip
    frames = _frames(6)
    with VideoSwinClient(serving.target, "fake") as client:
        np.testing.assert_array_equal(client.features(frames), expected_features(frames))
        assert client.max_batch == 2
    assert _sizes(serving.faults) == [6, 2, 2, 2]


def test_other_invalid_arguments_are_not_taken_for_a_batch_limit(serving):
    serving.faults.fail(PREDICT, grpc.StatusCode.INVALID_ARGUMENT, "the request has batch size 6, more than 2",
                        signature=DEFAULT)  # fmt: skip
    with VideoSwinClient(serving.target, "fake") as client, pytest.raises(InvalidInput, match="more than 2"):
        client.features(_frames(6))
    assert _sizes(serving.faults) == [6]


def test_classify_returns_top_k_labels(serving):
    frames = _frames(3)
    with VideoSwinClient(serving.target, "fake", max_batch=2) as client:
        result = client.classify(frames)
    logits = expected_logits(frames).astype(np.float64)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    best = np.argsort(-probs, axis=1)
    assert result.top_k_labels == [[LABELS[i] for i in row] for row in best]
    np.testing.assert_array_equal(result.top_k_classes, best)
    np.testing.assert_allclose(result.probabilities, probs, atol=1e-6)
    np.testing.assert_allclose(result.logits, logits, atol=1e-6)


def test_status_lists_versions_and_states(serving):
    with VideoSwinClient(serving.target, "fake") as client:
        states = client.status()
    assert [(s.version, s.state) for s in states] == [(1, "AVAILABLE"), (2, "AVAILABLE")]


def test_unknown_model_and_version_raise_model_not_found_and_an_unknown_label_invalid_input(serving):
    for kwargs in ({"model": "nope"}, {"model": "fake", "version": 9}):
        with VideoSwinClient(serving.target, **kwargs) as client, pytest.raises(ModelNotFound) as err:
            client.model_info()
        assert err.value.code == grpc.StatusCode.NOT_FOUND
    with VideoSwinClient(serving.target, "fake", label="gone") as client, pytest.raises(InvalidInput, match="gone"):
        client.model_info()


def test_missing_signature_names_the_ones_available(serving):
    with VideoSwinClient(serving.target, "fake", signature="attention") as client:
        with pytest.raises(InvalidInput, match=r"no signature 'attention'.*classify.*serving_default"):
            client.model_info()


def test_wrong_frames_are_rejected_before_sending_with_the_expected_shape(serving):
    with VideoSwinClient(serving.target, "fake") as client:
        with pytest.raises(InvalidInput, match=r"\[batch, 4, 32, 32, 3\].*got shape \[2, 4, 16, 32, 3\]"):
            client.features(np.zeros((2, 4, 16, 32, 3), np.uint8))
        with pytest.raises(InvalidInput, match="uint8"):
            client.features(np.zeros((2, 4, 32, 32, 3), np.float32))
    assert serving.faults.calls(PREDICT, DEFAULT) == []


def test_server_invalid_argument_surfaces_with_its_message(serving):
    with VideoSwinClient(serving.target, "fake") as client:
        with pytest.raises(InvalidInput, match="frames") as err:
            client.predict({contract.CLIPS: np.zeros((1, 4, 32, 32, 3), np.float32)})
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_retries_unavailable_and_resource_exhausted_with_backoff_then_succeeds(serving):
    serving.faults.fail(PREDICT, grpc.StatusCode.UNAVAILABLE, signature=DEFAULT)
    serving.faults.fail(PREDICT, grpc.StatusCode.RESOURCE_EXHAUSTED, signature=DEFAULT)
    with VideoSwinClient(serving.target, "fake", retry=FAST_RETRY) as client:
        frames = _frames(1)
        np.testing.assert_array_equal(client.features(frames), expected_features(frames))
    times = [seen.time for seen in serving.faults.calls(PREDICT, DEFAULT)]
    assert len(times) == 3
    gaps = np.diff(times)
    assert gaps[0] >= 0.025 and gaps[1] >= 0.05  # at least half of each backoff cap (0.05 s, then 0.1 s)


def test_gives_up_after_max_attempts_with_server_unavailable(serving):
    serving.faults.fail(PREDICT, grpc.StatusCode.UNAVAILABLE, times=None, signature=DEFAULT)
    with VideoSwinClient(serving.target, "fake", retry=FAST_RETRY) as client:
        with pytest.raises(ServerUnavailable, match="injected UNAVAILABLE") as err:
            client.features(_frames(1))
    assert err.value.code == grpc.StatusCode.UNAVAILABLE
    assert len(serving.faults.calls(PREDICT, DEFAULT)) == 4


def test_other_errors_are_not_retried(serving):
    serving.faults.fail(PREDICT, grpc.StatusCode.INTERNAL, signature=DEFAULT)
    serving.faults.fail(PREDICT, grpc.StatusCode.UNAVAILABLE, signature=DEFAULT)
    with VideoSwinClient(serving.target, "fake", retry=FAST_RETRY) as client:
        with pytest.raises(ServerError) as err:
            client.features(_frames(1))
    assert err.value.code == grpc.StatusCode.INTERNAL
    assert len(serving.faults.calls(PREDICT, DEFAULT)) == 1


def test_deadline_exceeded_when_the_server_is_slow(serving):
    serving.faults.delay(PREDICT, 120.0, signature=DEFAULT)
    with VideoSwinClient(serving.target, "fake", timeout=0.5) as client:
        client.model_info()
        start = time.monotonic()
        with pytest.raises(DeadlineExceeded) as err:
            client.features(_frames(1))
        assert time.monotonic() - start < 60  # the client's deadline, not the server's 120 s
    assert err.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_deadline_bounds_retries_against_a_down_server(free_port):
    retry = RetryPolicy(max_attempts=100, initial_backoff=1.0, max_backoff=2.0)  # about 150 s without a deadline
    with VideoSwinClient(f"127.0.0.1:{free_port}", "fake", timeout=1.0, retry=retry) as client:
        start = time.monotonic()
        with pytest.raises((ServerUnavailable, DeadlineExceeded)):
            client.model_info()
        assert time.monotonic() - start < 60


def test_version_and_label_together_are_refused():
    with pytest.raises(ValueError, match="not both"):
        VideoSwinClient("127.0.0.1:1", "m", version=1, label="stable")
    with pytest.raises(ValueError, match=r"\[a-zA-Z0-9_\]"):
        VideoSwinClient("127.0.0.1:1", "m", label="no-dashes")


def test_channel_options_cover_big_messages_keepalive_and_round_robin_for_dns():
    from vswin.client import ChannelSettings

    options = dict(ChannelSettings("dns:///serving.internal:8500").options())
    assert options["grpc.max_send_message_length"] == 2**31 - 1
    assert options["grpc.max_receive_message_length"] == 2**31 - 1
    assert options["grpc.keepalive_time_ms"] == 60_000
    assert options["grpc.lb_policy_name"] == "round_robin"
    assert "grpc.lb_policy_name" not in dict(ChannelSettings("localhost:8500").options())


def test_dns_target_with_round_robin_reaches_the_server(serving):
    with VideoSwinClient(f"dns:///localhost:{serving.port}", "fake") as client:
        assert client.model_info().clip_len == 4


def test_round_robin_spreads_requests_over_replicas(serving, tiny_exports):
    replica = TinyServer(tiny_config(tiny_exports, ("fake",)))
    try:
        target = f"ipv4:127.0.0.1:{serving.port},127.0.0.1:{replica.port}"
        with VideoSwinClient(target, "fake", max_batch=1) as client:
            client.features(_frames(8))
    finally:
        replica.stop()
    counts = [len(s.faults.calls(PREDICT, DEFAULT)) for s in (serving, replica)]
    assert sum(counts) == 8 and min(counts) >= 2


def test_wait_ready_blocks_until_a_late_server_starts(free_port, tiny_exports):
    started: list[TinyServer] = []
    timer = threading.Timer(0.8, lambda: started.append(TinyServer(tiny_config(tiny_exports, ("fake",)), port=free_port)))
    timer.start()
    try:
        with VideoSwinClient(f"127.0.0.1:{free_port}", "fake", retry=RetryPolicy(max_attempts=1)) as client:
            start = time.monotonic()
            assert client.wait_ready(timeout=120, interval=0.1).clip_len == 4
            assert time.monotonic() - start >= 0.5
    finally:
        timer.join()
        for server in started:
            server.stop()


def test_wait_ready_gives_up_with_deadline_exceeded(free_port):
    with VideoSwinClient(f"127.0.0.1:{free_port}", "fake", retry=RetryPolicy(max_attempts=1)) as client:
        with pytest.raises(DeadlineExceeded, match="not ready after 1s"):
            client.wait_ready(timeout=1.0, interval=0.2)
