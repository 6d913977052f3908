"""`vswin extract` end to end against the real in-process server: outputs, resume, the model's preprocessing,
images and frame features, failure summary, output that cannot be written, no TensorFlow."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from vswin import contract

# `python -m vswin.client` is `vswin extract` with only the client's parser; it reports whether TF got imported.
RUN = (
    "import sys; from vswin.client.__main__ import main; rc = main(sys.argv[1:]); "
    "print('tensorflow imported' if 'tensorflow' in sys.modules else 'no tensorflow', file=sys.stderr); sys.exit(rc)"
)


def _extract(env, *args, prefix=(), **popen):
    return subprocess.run([*prefix, sys.executable, "-c", RUN, *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=300, **popen)  # fmt: skip


def _predicts(serving):
    return len(serving.faults.calls("Predict", contract.SERVING_DEFAULT))


def test_extract_writes_outputs_summarises_failures_and_resumes(serving, real_videos, tmp_path, subprocess_env):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 4096)
    listing = tmp_path / "videos.txt"
    listing.write_text(f"# the batch\n{real_videos['bigbuckbunny']}\n\n{broken}\n")
    out = tmp_path / "features"
    common = ["--server", serving.target, "--model", "fake", "--clips", "2", "--crops", "3", "--out", out]

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

    calls = _predicts(serving)
    again = _extract(subprocess_env, real_videos["bikes"], "--list", listing, *common)
    assert again.returncode == 1
    assert "0 extracted, 2 skipped, 1 failed" in again.stderr
    assert _predicts(serving) == calls

    broken.unlink()
    listing.write_text(f"{real_videos['bigbuckbunny']}\n")
    redo = _extract(subprocess_env, real_videos["bikes"], "--list", listing, *common, "--overwrite", "--no-progress")
    assert redo.returncode == 0, redo.stderr
    assert "2 extracted, 0 skipped, 0 failed" in redo.stderr
    assert _predicts(serving) > calls


def test_vswin_extract_jsonl_to_stdout_with_version_and_sliding(serving, real_videos, subprocess_env):
    command = [
        sys.executable, "-m", "vswin", "extract", str(real_videos["bigbuckbunny"]),
        "--server", serving.target, "--model", "fake", "--version", "1",
        "--sampling", "sliding", "--frame-interval", "4", "--stride", "32", "--crops", "1",
        "--format", "jsonl", "--concurrency", "2",
    ]  # fmt: skip
    result = subprocess.run(command, env=subprocess_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    record = json.loads(line)
    assert record["version"] == 1 and record["sampling"] == "sliding"
    assert record["clip_start_frames"] == [0, 32, 64, 96]
    assert np.asarray(record["clip_features"]).shape == (4, 1, 8)


def test_extract_without_flags_samples_as_the_export_says(serving, real_videos, subprocess_env):
    """`fake` records 2 clips x 1 crop; `ssv2` one clip of segments x 3 crops; the flags still override."""

    def record(model, *flags):
        done = _extract(subprocess_env, real_videos["bikes"], "--server", serving.target, "--model", model,
                        "--format", "jsonl", *flags)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout), done.stderr

    fake, log = record("fake")
    assert np.asarray(fake["clip_features"]).shape == (2, 1, 8) and fake["sampling"] == "uniform"
    assert "uniform sampling, 2 clips x 1 crops, frame interval 2, short side 32" in log
    ssv2, _ = record("ssv2")
    assert ssv2["sampling"] == "segments" and ssv2["clip_start_frames"] == [31]
    assert np.asarray(ssv2["clip_features"]).shape == (1, 3, 8)
    overridden, _ = record("ssv2", "--sampling", "uniform", "--clips", "3", "--crops", "1")
    assert np.asarray(overridden["clip_features"]).shape == (3, 1, 8)


def test_extract_images_and_frames_of_videos_with_an_image_model(serving, real_videos, tmp_path, subprocess_env):
    from PIL import Image

    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    Image.fromarray(rng.integers(0, 256, (50, 50, 3), dtype=np.uint8)).save(tmp_path / "thumb.webp")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "features"
    files = [tmp_path / "photo.png", tmp_path / "thumb.webp", tmp_path / "broken.jpg", real_videos["bigbuckbunny"]]
    done = _extract(subprocess_env, *files, "--server", serving.target, "--model", "img", "--frames-per-video", "4",
                    "--out", out, "--no-progress")  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "3 extracted, 0 skipped, 1 failed" in done.stderr
    assert f"FAILED {tmp_path / 'broken.jpg'}: ImageError" in done.stderr
    assert "short side 36, center crop 32 (bicubic); videos: 4 frames each" in done.stderr
    assert np.load(out / "photo.npy").shape == (8,) and not (out / "photo.clips.npy").exists()
    sidecar = json.loads((out / "photo.json").read_text())
    assert (sidecar["family"], sidecar["height"], sidecar["width"]) == ("image", 60, 90)
    assert np.load(out / "bigbuckbunny.clips.npy").shape == (4, 1, 8)
    # 132 frames, seg = 131 / 4 = 32.75: rounded bounds 0, 33, 66 (65.5 to even), 98, 131
    assert json.loads((out / "bigbuckbunny.json").read_text())["clip_start_frames"] == [16, 49, 82, 114]
    wrong = _extract(subprocess_env, real_videos["bikes"], "--server", serving.target, "--model", "img",
                     "--clips", "3", "--format", "jsonl")  # fmt: skip
    assert wrong.returncode == 2 and "clips apply to video models; 'img' is an image model" in wrong.stderr


def test_extract_reports_an_unreachable_server_and_bad_arguments(free_port, real_videos, tmp_path, subprocess_env):
    down = _extract(subprocess_env, real_videos["bikes"], "--server", f"127.0.0.1:{free_port}", "--model", "fake",
                    "--out", tmp_path, "--timeout", "2")
    assert down.returncode == 1 and "UNAVAILABLE" in down.stderr
    nothing = _extract(subprocess_env, "--server", "x:1", "--model", "fake", "--out", tmp_path)
    assert nothing.returncode == 2 and "no videos or images given" in nothing.stderr
    clash = _extract(subprocess_env, "a/clip.mp4", "b/clip.mp4", "--server", "x:1", "--model", "m", "--out", tmp_path)
    assert clash.returncode == 2 and "would both write" in clash.stderr


def test_out_that_is_a_file_is_refused_before_anything_starts(real_videos, tmp_path, subprocess_env):
    out = tmp_path / "features"
    out.write_text("a file, not a directory")
    done = _extract(subprocess_env, real_videos["bikes"], "--server", "x:1", "--model", "m", "--out", out)
    assert done.returncode == 2 and f"--out {out} is not a directory" in done.stderr
    assert "Traceback" not in done.stderr


def test_out_in_a_read_only_directory_is_refused_before_anything_starts(real_videos, tmp_path, subprocess_env):
    """As root, without the capability to override file permissions (root writes anywhere otherwise)."""
    prefix = ()
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without util-linux's setpriv to drop CAP_DAC_OVERRIDE")
        drop = "-dac_override,-dac_read_search"
        prefix = ("setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}")
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o555)
    try:
        for out in (read_only, read_only / "new"):
            done = _extract(subprocess_env, real_videos["bikes"], "--server", "x:1", "--model", "m", "--out", out,
                            prefix=prefix)  # fmt: skip
            assert done.returncode == 2, done.stderr
            assert f"cannot write to --out {out}: Permission denied" in done.stderr
            assert "Traceback" not in done.stderr
        assert list(read_only.iterdir()) == []
    finally:
        read_only.chmod(0o755)


# Python ignores SIGXFSZ, so a write past the limit fails with EFBIG, as on a full disk. The limit is set by a
# small Python that then execs the command: a preexec_fn would make subprocess fork() this process, whose gRPC
# server threads' fork handlers can abort the child ("epoll_wait error: Bad file descriptor", exit -6).
LIMIT_FILE_SIZE = (
    "import os, resource, sys; size = int(sys.argv[1]); resource.setrlimit(resource.RLIMIT_FSIZE, (size, size)); "
    "os.execv(sys.argv[2], sys.argv[2:])"
)


def _limit_file_size(max_bytes: int) -> tuple[str, ...]:
    """A command prefix that runs the rest of the command with files limited to `max_bytes`."""
    return (sys.executable, "-c", LIMIT_FILE_SIZE, str(max_bytes))


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_write_that_fails_fails_that_video_only_and_leaves_nothing_half_done(serving, real_videos, tmp_path,
                                                                               subprocess_env, overwrite):  # fmt: skip
    """Files may not grow past 2,500 bytes: bikes' 31 sliding clips x 3 crops (3.1 kB) cannot be written,
    bigbuckbunny's 16 (1.7 kB) can. bikes fails alone and leaves no temporary file and no orphan array; over
    an earlier complete output (--overwrite) that output stays as it was."""
    out = tmp_path / "features"
    common = ["--server", serving.target, "--model", "fake", "--sampling", "sliding", "--stride", "8", "--crops", "3",
              "--out", out, "--no-progress"]  # fmt: skip
    before = {}
    if overwrite:
        assert _extract(subprocess_env, real_videos["bikes"], *common).returncode == 0
        before = {p.name: p.read_bytes() for p in out.iterdir()}
    flags = [*common, "--overwrite"] if overwrite else common
    done = _extract(subprocess_env, real_videos["bikes"], real_videos["bigbuckbunny"], *flags,
                    prefix=_limit_file_size(2500))  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "1 extracted, 0 skipped, 1 failed" in done.stderr, done.stderr
    failed = f"FAILED {real_videos['bikes']}: OSError: cannot write its output to {out}: File too large"
    assert failed in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    bunny = ["bigbuckbunny.clips.npy", "bigbuckbunny.json", "bigbuckbunny.npy"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*bunny, *before]), done.stderr
    assert all((out / name).read_bytes() == data for name, data in before.items())
    rerun = _extract(subprocess_env, real_videos["bikes"], real_videos["bigbuckbunny"], *common)
    assert rerun.returncode == 0, rerun.stderr
    assert ("0 extracted, 2 skipped" if overwrite else "1 extracted, 1 skipped") in rerun.stderr, rerun.stderr


def test_vswin_extract_dense_sample_range_narrows_the_starts(serving, real_videos, subprocess_env):
    """Dense test-mode starts spread over [0, frames - sample_range]: a range of 64 ends 56 frames before
    the default one (the clip span, 4 frames x interval 2 = 8)."""

    def last_start(*extra: str) -> int:
        command = [
            sys.executable, "-m", "vswin", "extract", str(real_videos["bikes"]), "--server", serving.target,
            "--model", "fake", "--sampling", "dense", "--clips", "3", "--crops", "1", "--format", "jsonl", *extra,
        ]  # fmt: skip
        result = subprocess.run(command, env=subprocess_env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        starts = json.loads(result.stdout)["clip_start_frames"]
        assert starts[0] == 0 and len(starts) == 3
        return starts[-1]

    assert last_start() - last_start("--sample-range", "64") == 56


def test_extract_redoes_a_video_whose_outputs_an_interruption_left_half_written(serving, real_videos, tmp_path,
                                                                                  subprocess_env):  # fmt: skip
    """Arrays without their sidecar (the sidecar is written last) mean unfinished: extracted again."""
    out = tmp_path / "features"
    common = ["--server", serving.target, "--model", "fake", "--clips", "2", "--crops", "1", "--out", out,
              "--no-progress"]  # fmt: skip
    first = _extract(subprocess_env, real_videos["bikes"], real_videos["bigbuckbunny"], *common)
    assert first.returncode == 0, first.stderr
    expected = np.load(out / "bikes.npy")
    # What a kill between the array renames and the sidecar rename leaves, plus a half-written temp file.
    (out / "bikes.json").unlink()
    np.save(out / "bikes.npy", np.zeros_like(expected))
    (out / "bikes.clips.npy.tmp").write_bytes(b"\x93NUMPY half")
    calls = _predicts(serving)
    again = _extract(subprocess_env, real_videos["bikes"], real_videos["bigbuckbunny"], *common)
    assert again.returncode == 0, again.stderr
    assert "1 extracted, 1 skipped, 0 failed" in again.stderr
    assert _predicts(serving) > calls
    np.testing.assert_allclose(np.load(out / "bikes.npy"), expected, atol=1e-6)
    assert json.loads((out / "bikes.json").read_text())["video"].endswith("bikes.mp4")
    assert not list(out.glob("*.tmp"))
