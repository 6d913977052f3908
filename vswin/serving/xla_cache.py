"""TensorFlow's persistent XLA compilation cache behind `vswin serve --xla_cache_dir`.

A warm start should not compile again: every XLA program a server compiles
(one per signature and batch size; 9-13 s each for Swin-T on CPU) can be
written to a directory and read back by the next process that needs the same
program on the same kind of device. TensorFlow does this itself when its XLA
flag `--tf_xla_persistent_cache_directory` is set in `TF_XLA_FLAGS`
(files `xla_compile_cache__<signature hash>__<HLO hash>__<device>.pb`; an
entry whose HLO differs is not used). TF Serving reads the same variable,
which is how Dockerfile.serving and the Kubernetes manifests turn it on.

TensorFlow reads `TF_XLA_FLAGS` once per process, at its first XLA-related
step; `enable_xla_cache` must run before that (server start does).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

TF_XLA_FLAGS = "TF_XLA_FLAGS"
CACHE_DIRECTORY_FLAG = "--tf_xla_persistent_cache_directory"
ENTRY_GLOB = "xla_compile_cache__*.pb"


def with_cache_directory(xla_flags: str, directory: str | Path) -> str:
    """`xla_flags` (a TF_XLA_FLAGS value) with the persistent cache pointed at `directory`.

    ValueError when the flags already name another directory: two settings of one
    cache would leave it unclear which one TensorFlow uses.
    """
    wanted = f"{CACHE_DIRECTORY_FLAG}={directory}"
    flags = shlex.split(xla_flags)
    present = [flag for flag in flags if flag.startswith(f"{CACHE_DIRECTORY_FLAG}=")]
    if wanted in present:
        return xla_flags
    if present:
        raise ValueError(f"{TF_XLA_FLAGS} already sets {present[0]}; --xla_cache_dir={directory} would contradict it")
    return " ".join([*flags, wanted])


def enable_xla_cache(directory: str | Path) -> Path:
    """Create `directory` and point this process's XLA compilation cache at it (before any XLA compilation)."""
    path = Path(directory).absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"--xla_cache_dir {directory}: cannot create it: {err.strerror or err}") from err
    if not os.access(path, os.W_OK):
        raise ValueError(f"--xla_cache_dir {path} is not writable (mount it read-write, or drop the flag)")
    os.environ[TF_XLA_FLAGS] = with_cache_directory(os.environ.get(TF_XLA_FLAGS, ""), path)
    return path


def cache_entries(directory: str | Path) -> set[str]:
    """Names of the compiled programs stored in `directory`."""
    return {entry.name for entry in Path(directory).glob(ENTRY_GLOB)}
