"""`vswin extract` end to end against the in-process server: outputs, resume, failure summary, no TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

# `python -m vswin.client` is `vswin extract` with only the client's parser; it reports whether TF got imported.
RUN = (
    "import sys; from vswin.client.__main__ import main; rc = main(sys.argv[1:]); "
    "print('tensorflow imported' if 'tensorflow' in sys.modules else 'no tensorflow', file=sys.stderr); sys.exit(rc)"
)


def _extract(env, *args):
    return subprocess.run([sys.executable, "-c", RUN, *map(str, args)], env=env, capture_output=True, text=True, timeout=120)


def _predicts(server):
    return sum(name == "Predict" for name, _ in server.servicer.calls)


def test_extract_writes_outputs_summarises_failures_and_resumes(fake_server, real_videos, tmp_path, subprocess_env):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 4096)
    listing = tmp_path / "videos.txt"
    listing.write_text(f"# the batch\n{real_videos['bigbuckbunny']}\n\n{broken}\n")
    out = tmp_path / "features"
    common = ["--server", fake_server.target, "--model", "fake", "--clips", "2", "--crops", "3", "--out", out]

    first = _extract(subprocess_env, real_videos["bikes"], "--list", listing, *common, "--no-progress")
    assert first.returncode == 1, first.stderr
    assert "no tensorflow" in first.stderr
    assert "2 extracted, 0 skipped, 1 failed" in first.stderr
    assert f"FAILED {broken}: VideoError" in first.stderr
    features = np.load(out / "bikes.npy")
    clip_features = np.load(out / "bikes.clips.npy")
    assert features.shape == (8,) and clip_features.shape == (2, 3, 8)
    np.testing.assert_allclose(features, clip_features.mean(axis=(0, 1)), atol=1e-6)
    sidecar = json.loads((out / "bigbuckbunny.json").read_text())
    assert (sidecar["model"], sidecar["version"], sidecar["num_frames"], sidecar["crops"]) == ("fake", 2, 132, 3)
    assert len(sidecar["clip_starts"]) == 2 and sidecar["clip_starts"][0] < sidecar["clip_ends"][0]
    assert not list(out.glob("*.tmp")) and not (out / "broken.npy").exists()

    calls = _predicts(fake_server)
    again = _extract(subprocess_env, real_videos["bikes"], "--list", listing, *common)
    assert again.returncode == 1
    assert "0 extracted, 2 skipped, 1 failed" in again.stderr
    assert _predicts(fake_server) == calls

    broken.unlink()
    listing.write_text(f"{real_videos['bigbuckbunny']}\n")
    redo = _extract(subprocess_env, real_videos["bikes"], "--list", listing, *common, "--overwrite", "--no-progress")
    assert redo.returncode == 0, redo.stderr
    assert "2 extracted, 0 skipped, 0 failed" in redo.stderr
    assert _predicts(fake_server) > calls


def test_vswin_extract_jsonl_to_stdout_with_version_and_sliding(fake_server, real_videos, subprocess_env):
    command = [
        sys.executable, "-m", "vswin", "extract", str(real_videos["bigbuckbunny"]),
        "--server", fake_server.target, "--model", "fake", "--version", "1",
        "--sampling", "sliding", "--frame-interval", "4", "--stride", "32", "--crops", "1",
        "--format", "jsonl", "--concurrency", "2",
    ]  # fmt: skip
    result = subprocess.run(command, env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    record = json.loads(line)
    assert record["version"] == 1 and record["sampling"] == "sliding"
    assert record["clip_start_frames"] == [0, 32, 64, 96]
    assert np.asarray(record["clip_features"]).shape == (4, 1, 8)


def test_extract_reports_an_unreachable_server_and_bad_arguments(free_port, real_videos, tmp_path, subprocess_env):
    down = _extract(subprocess_env, real_videos["bikes"], "--server", f"127.0.0.1:{free_port}", "--model", "fake",
                    "--out", tmp_path, "--timeout", "2")
    assert down.returncode == 1 and "UNAVAILABLE" in down.stderr
    nothing = _extract(subprocess_env, "--server", "x:1", "--model", "fake", "--out", tmp_path)
    assert nothing.returncode == 2 and "no videos given" in nothing.stderr
    clash = _extract(subprocess_env, "a/clip.mp4", "b/clip.mp4", "--server", "x:1", "--model", "m", "--out", tmp_path)
    assert clash.returncode == 2 and "would both write" in clash.stderr


def test_vswin_extract_dense_sample_range_narrows_the_starts(fake_server, real_videos, subprocess_env):
    """Dense test-mode starts spread over [0, frames - sample_range]: a range of 64 ends 56 frames before
    the default one (the clip span, 4 frames x interval 2 = 8)."""

    def last_start(*extra: str) -> int:
        command = [
            sys.executable, "-m", "vswin", "extract", str(real_videos["bikes"]), "--server", fake_server.target,
            "--model", "fake", "--sampling", "dense", "--clips", "3", "--crops", "1", "--format", "jsonl", *extra,
        ]  # fmt: skip
        result = subprocess.run(command, env=subprocess_env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        starts = json.loads(result.stdout)["clip_start_frames"]
        assert starts[0] == 0 and len(starts) == 3
        return starts[-1]

    assert last_start() - last_start("--sample-range", "64") == 56


def test_extract_redoes_a_video_whose_outputs_an_interruption_left_half_written(fake_server, real_videos, tmp_path,
                                                                                  subprocess_env):  # fmt: skip
    """Arrays without their sidecar (the sidecar is written last) mean unfinished: extracted again."""
    out = tmp_path / "features"
    common = ["--server", fake_server.target, "--model", "fake", "--clips", "2", "--crops", "1", "--out", out,
              "--no-progress"]  # fmt: skip
    first = _extract(subprocess_env, real_videos["bikes"], real_videos["bigbuckbunny"], *common)
    assert first.returncode == 0, first.stderr
    expected = np.load(out / "bikes.npy")
    # What a kill between the array renames and the sidecar rename leaves, plus a half-written temp file.
    (out / "bikes.json").unlink()
    np.save(out / "bikes.npy", np.zeros_like(expected))
    (out / "bikes.clips.npy.tmp").write_bytes(b"\x93NUMPY half")
    calls = _predicts(fake_server)
    again = _extract(subprocess_env, real_videos["bikes"], real_videos["bigbuckbunny"], *common)
    assert again.returncode == 0, again.stderr
    assert "1 extracted, 1 skipped, 0 failed" in again.stderr
    assert _predicts(fake_server) > calls
    np.testing.assert_allclose(np.load(out / "bikes.npy"), expected, atol=1e-6)
    assert json.loads((out / "bikes.json").read_text())["video"].endswith("bikes.mp4")
    assert not list(out.glob("*.tmp"))
