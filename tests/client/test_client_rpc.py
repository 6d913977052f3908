"""VideoSwinClient against an in-process TF Serving stand-in: metadata, features, errors, retries, deadlines."""

from __future__ import annotations

import random
import time

import grpc
import numpy as np
import pytest

from tests.client.fake_serving import LABELS, FakeModel, FakeServer, fake_features, fake_logits
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


def _frames(batch: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (batch, 4, 32, 32, 3), dtype=np.uint8)


def test_model_info_reads_clip_geometry_and_feature_dim_and_is_cached(fake_server):
    with VideoSwinClient(fake_server.target, "fake") as client:
        info = client.model_info()
        assert (info.name, info.version, info.signature) == ("fake", 2, "serving_default")
        assert info.clip_shape == (4, 32, 32)
        assert info.feature_dim == 8
        assert set(info.signatures) == {"serving_default", "classify"}
        assert info.input.dtype == "DT_UINT8" and info.input.shape == (None, 4, 32, 32, 3)
        client.model_info()
    assert [c for c, _ in fake_server.servicer.calls].count("GetModelMetadata") == 1


def test_version_and_label_select_the_version(fake_server):
    with VideoSwinClient(fake_server.target, "fake", version=1) as client:
        assert client.model_info().version == 1
    with VideoSwinClient(fake_server.target, "fake", label="canary") as client:
        assert client.model_info().version == 2
        client.features(_frames(1))
    assert fake_server.servicer.requests[-1].model_spec.version_label == "canary"


def test_features_match_the_model_and_split_into_max_batch_requests(fake_server):
    frames = _frames(5)
    with VideoSwinClient(fake_server.target, "fake", max_batch=2) as client:
        features = client.features(frames)
    assert features.dtype == np.float32 and features.shape == (5, 8)
    np.testing.assert_allclose(features, fake_features(frames), atol=1e-6)
    sizes = [r.inputs["frames"].tensor_shape.dim[0].size for r in fake_server.servicer.requests]
    assert sizes == [2, 2, 1]
    assert all(list(r.output_filter) == ["features"] for r in fake_server.servicer.requests)


def test_features_read_typed_float_val_responses(free_port):
    server = FakeServer(free_port, FakeModel(as_content=False)).start()
    try:
        with VideoSwinClient(server.target, "fake") as client:
            np.testing.assert_allclose(client.features(_frames(3)), fake_features(_frames(3)), atol=1e-6)
    finally:
        server.stop()


def test_batch_halves_when_server_batcher_rejects_it(free_port):
    server = FakeServer(free_port, FakeModel(max_batch=3)).start()
    try:
        frames = _frames(7)
        with VideoSwinClient(server.target, "fake", max_batch=8) as client:
            np.testing.assert_allclose(client.features(frames), fake_features(frames), atol=1e-6)
            assert client.max_batch == 2
    finally:
        server.stop()


def test_classify_returns_top_k_labels(fake_server):
    frames = _frames(2)
    with VideoSwinClient(fake_server.target, "fake") as client:
        result = client.classify(frames)
    probs = np.exp(fake_logits(frames))
    probs /= probs.sum(axis=1, keepdims=True)
    best = np.argsort(-probs, axis=1)[:, :3]
    assert result.top_k_labels == [[LABELS[i] for i in row] for row in best]
    np.testing.assert_array_equal(result.top_k_classes, best)
    np.testing.assert_allclose(result.probabilities, probs, atol=1e-6)


def test_status_lists_versions_and_states(fake_server):
    with VideoSwinClient(fake_server.target, "fake") as client:
        states = client.status()
    assert [(s.version, s.state) for s in states] == [(1, "AVAILABLE"), (2, "AVAILABLE")]


def test_unknown_model_version_and_label_raise_model_not_found(fake_server):
    for kwargs in ({"model": "nope"}, {"model": "fake", "version": 9}, {"model": "fake", "label": "gone"}):
        with VideoSwinClient(fake_server.target, **kwargs) as client, pytest.raises(ModelNotFound) as err:
            client.model_info()
        assert err.value.code == grpc.StatusCode.NOT_FOUND
        assert "Servable not found" in err.value.details or "version label" in err.value.details


def test_missing_signature_names_the_ones_available(fake_server):
    with VideoSwinClient(fake_server.target, "fake", signature="feature_map") as client:
        with pytest.raises(InvalidInput, match=r"no signature 'feature_map'.*classify.*serving_default"):
            client.model_info()


def test_wrong_frames_are_rejected_before_sending_with_the_expected_shape(fake_server):
    with VideoSwinClient(fake_server.target, "fake") as client:
        with pytest.raises(InvalidInput, match=r"\[batch, 4, 32, 32, 3\].*got shape \[2, 4, 16, 32, 3\]"):
            client.features(np.zeros((2, 4, 16, 32, 3), np.uint8))
        with pytest.raises(InvalidInput, match="uint8"):
            client.features(np.zeros((2, 4, 32, 32, 3), np.float32))
    assert fake_server.servicer.requests == []


def test_server_invalid_argument_surfaces_with_its_message(fake_server):
    with VideoSwinClient(fake_server.target, "fake") as client:
        with pytest.raises(InvalidInput, match="input must be 'frames'") as err:
            client.predict({"clips": np.zeros((1, 4, 32, 32, 3), np.float32)})
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_retries_unavailable_with_growing_backoff_then_succeeds(fake_server):
    fake_server.servicer.failures = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED]
    with VideoSwinClient(fake_server.target, "fake", retry=FAST_RETRY) as client:
        client.model_info()
        frames = _frames(1)
        np.testing.assert_allclose(client.features(frames), fake_features(frames), atol=1e-6)
    times = [t for name, t in fake_server.servicer.calls if name == "Predict"]
    assert len(times) == 3
    gaps = np.diff(times)
    assert 0.025 <= gaps[0] < 0.5 and 0.05 <= gaps[1] < 0.6


def test_gives_up_after_max_attempts_with_server_unavailable(fake_server):
    fake_server.servicer.failures = [grpc.StatusCode.UNAVAILABLE] * 10
    with VideoSwinClient(fake_server.target, "fake", retry=FAST_RETRY) as client:
        client.model_info()
        with pytest.raises(ServerUnavailable, match="injected UNAVAILABLE") as err:
            client.features(_frames(1))
    assert err.value.code == grpc.StatusCode.UNAVAILABLE
    assert sum(name == "Predict" for name, _ in fake_server.servicer.calls) == 4


def test_other_errors_are_not_retried(fake_server):
    fake_server.servicer.failures = [grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE]
    with VideoSwinClient(fake_server.target, "fake", retry=FAST_RETRY) as client:
        client.model_info()
        with pytest.raises(ServerError) as err:
            client.features(_frames(1))
    assert err.value.code == grpc.StatusCode.INTERNAL
    assert sum(name == "Predict" for name, _ in fake_server.servicer.calls) == 1


def test_deadline_exceeded_when_server_is_slow(fake_server):
    with VideoSwinClient(fake_server.target, "fake", timeout=0.3) as client:
        client.model_info()
        fake_server.servicer.delay = 1.0
        start = time.monotonic()
        with pytest.raises(DeadlineExceeded) as err:
            client.features(_frames(1))
        assert time.monotonic() - start < 0.9
    assert err.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_deadline_bounds_retries_against_a_down_server(free_port):
    retry = RetryPolicy(max_attempts=100, initial_backoff=0.05, max_backoff=0.1)
    with VideoSwinClient(f"127.0.0.1:{free_port}", "fake", timeout=1.0, retry=retry) as client:
        start = time.monotonic()
        with pytest.raises((ServerUnavailable, DeadlineExceeded)):
            client.model_info()
        assert time.monotonic() - start < 2.0


def test_backoff_delays_grow_exponentially_with_jitter_and_cap():
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=1.0, multiplier=2.0, rng=random.Random(3))
    for attempt, cap in enumerate([0.1, 0.2, 0.4, 0.8, 1.0, 1.0]):
        delays = [policy.delay(attempt) for _ in range(50)]
        assert all(cap / 2 <= d <= cap for d in delays)
        assert len(set(delays)) > 1


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


def test_dns_target_with_round_robin_reaches_the_server(fake_server):
    with VideoSwinClient(f"dns:///localhost:{fake_server.port}", "fake") as client:
        assert client.model_info().clip_len == 4


def test_round_robin_spreads_requests_over_replicas(fake_server):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        other_port = sock.getsockname()[1]
    replica = FakeServer(other_port).start()
    try:
        target = f"ipv4:127.0.0.1:{fake_server.port},127.0.0.1:{replica.port}"
        with VideoSwinClient(target, "fake", max_batch=1) as client:
            client.features(_frames(8))
    finally:
        replica.stop()
    counts = [len(s.servicer.requests) for s in (fake_server, replica)]
    assert sum(counts) == 8 and min(counts) >= 2


def test_wait_ready_blocks_until_a_late_server_starts(free_port):
    import threading

    server = FakeServer(free_port)
    timer = threading.Timer(0.8, server.start)
    timer.start()
    try:
        retry = RetryPolicy(max_attempts=1)
        with VideoSwinClient(server.target, "fake", retry=retry) as client:
            start = time.monotonic()
            assert client.wait_ready(timeout=20, interval=0.1).clip_len == 4
            assert time.monotonic() - start >= 0.5
    finally:
        timer.join()
        server.stop()


def test_wait_ready_gives_up_with_deadline_exceeded(free_port):
    with VideoSwinClient(f"127.0.0.1:{free_port}", "fake", retry=RetryPolicy(max_attempts=1)) as client:
        with pytest.raises(DeadlineExceeded, match="not ready after 1s"):
            client.wait_ready(timeout=1.0, interval=0.2)
