"""`vswin bench serve` against the real in-process server, its Predicts held 10 ms and every 5th one failed."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

import grpc

from vswin import contract
from vswin.bench.loadgen import LoadSettings, closed_loop
from vswin.bench.payload import ClipPool, random_clips
from vswin.bench.transport import GrpcTransport

QUICK = ["--measurement-interval-ms", "300", "--max-trials", "3", "--warmup-s", "0.1", "--max-duration-s", "5",
         "--stability-percentage", "100"]  # fmt: skip


CLIP = (4, 32, 32)


@pytest.fixture()
def slow_serving(serving):
    """Every Predict on serving_default held 10 ms, every 5th failed with UNAVAILABLE."""
    serving.faults.fail("Predict", grpc.StatusCode.UNAVAILABLE, "injected overload", times=None, every=5,
                        signature=contract.SERVING_DEFAULT)  # fmt: skip
    serving.faults.delay("Predict", 0.01, signature=contract.SERVING_DEFAULT)
    return serving


def _predicts(serving):
    return serving.faults.requests("Predict", contract.SERVING_DEFAULT)


def test_errors_are_counted_by_grpc_code_over_the_wire(slow_serving):
    transport = GrpcTransport(slow_serving.target, "fake")
    assert transport.input.clip_shape == CLIP and transport.input.dtype == "uint8"
    settings = LoadSettings(batch_size=2, measurement_interval_s=0.3, warmup_s=0.1, max_trials=3, stability_pct=100)
    result = closed_loop(transport, ClipPool(random_clips(CLIP)), 2, settings)
    transport.close()
    requests = _predicts(slow_serving)
    assert result.sent_total == len(requests) == result.ok_total + result.errors_total
    assert set(result.errors) == {"UNAVAILABLE"}
    assert result.errors_total == pytest.approx(result.sent_total / 5, abs=2)
    assert result.round_trip_ms >= 10.0 and result.serialize_ms > 0
    assert result.request_bytes == pytest.approx(max(r.ByteSize() for r in requests), abs=64)


def test_float_signature_sends_four_times_the_bytes(serving):
    frames = GrpcTransport(serving.target, "fake")
    floats = GrpcTransport(serving.target, "fake", signature="features_float")
    assert floats.input.dtype == "float32" and floats.input.name == "clips"
    clips = random_clips(CLIP, 2)
    small = frames.send(ClipPool(clips, "uint8").batch(2)).request_bytes
    large = floats.send(ClipPool(clips, "float32").batch(2)).request_bytes
    frames.close()
    floats.close()
    assert large - small == pytest.approx(3 * clips.nbytes, abs=32)  # 4 bytes a value instead of 1


def test_serve_command_writes_the_full_report(slow_serving, subprocess_env, tmp_path):
    command = [sys.executable, "-m", "vswin", "bench", "serve", "--server", slow_serving.target, "--model", "fake",
               "--concurrency", "1,2", "--server-flags", "--port=x --enable_batching", "--out", str(tmp_path),
               "--name", "run", *QUICK]  # fmt: skip
    done = subprocess.run(command, env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout and "c=2 b=1" in done.stdout
    document = json.loads((tmp_path / "run.json").read_text())
    assert document["target"]["model"] == "fake" and document["target"]["version"] == 2
    assert document["target"]["server_flags"] == "--port=x --enable_batching"
    assert document["target"]["input"] == {"name": "frames", "dtype": "uint8", "clip_shape": list(CLIP)}
    assert document["target"]["export"]["family"] == contract.VIDEO  # from the export's metadata signature
    assert document["settings"]["measurement_interval_s"] == 0.3
    for result in document["results"]:
        assert result["sent_total"] == result["ok_total"] + result["errors_total"]
        assert set(result["errors"]) <= {"UNAVAILABLE"}
    with (tmp_path / "run.csv").open() as f:
        assert [row["value"] for row in csv.DictReader(f)] == ["1", "2"]
    assert (tmp_path / "run_concurrency.png").read_bytes().startswith(b"\x89PNG")


def test_serve_command_open_loop_writes_rate_plot(slow_serving, subprocess_env, tmp_path):
    command = [sys.executable, "-m", "vswin", "bench", "serve", "--server", slow_serving.target, "--model", "fake",
               "--rate", "20,40", "--out", str(tmp_path), "--name", "open", *QUICK]  # fmt: skip
    done = subprocess.run(command, env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "open.json").read_text())["results"]
    assert [r["mode"] for r in results] == ["rate", "rate"]
    assert results[1]["achieved_rate"] == pytest.approx(40, rel=0.35)
    assert (tmp_path / "open_rate.png").exists()


def test_serve_command_names_an_unknown_model(serving, subprocess_env, tmp_path):
    command = [sys.executable, "-m", "vswin", "bench", "serve", "--server", serving.target, "--model", "nope",
               "--out", str(tmp_path)]  # fmt: skip
    done = subprocess.run(command, env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "NOT_FOUND" in done.stderr and "nope" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_setting_without_a_window_is_recorded_and_the_sweep_goes_on(slow_serving, subprocess_env, tmp_path):
    """Windows of 5 s cannot complete within --max-duration-s 1: each setting fails on its own, the run reports."""
    command = [sys.executable, "-m", "vswin", "bench", "serve", "--server", slow_serving.target, "--model", "fake",
               "--concurrency", "1,2", "--measurement-interval-ms", "5000", "--max-duration-s", "1",
               "--warmup-s", "0", "--out", str(tmp_path), "--name", "short"]  # fmt: skip
    done = subprocess.run(command, env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "concurrency=1 failed: " in done.stderr and "concurrency=2 failed: " in done.stderr
    document = json.loads((tmp_path / "short.json").read_text())
    assert document["results"] == []
    assert [(f["mode"], f["value"]) for f in document["failed_settings"]] == [("concurrency", 1), ("concurrency", 2)]
    assert "no measurement window completed" in document["failed_settings"][0]["error"]


def test_tls_flags_reach_the_channel(serving, tmp_path):
    """--root-certs turns TLS on: against the plaintext stand-in the handshake fails, as it must."""
    from vswin.cli import main

    certs = tmp_path / "roots.pem"
    certs.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    with pytest.raises(SystemExit, match="UNAVAILABLE.*(security|handshak)"):
        main(["bench", "serve", "--server", serving.target, "--model", "fake", "--root-certs", str(certs),
              "--timeout", "3", "--out", str(tmp_path), *QUICK])  # fmt: skip
