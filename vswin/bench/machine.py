"""The machine and software a figure was measured on, and the process settings that move CPU figures.

`describe()` is the machine (CPU model and instruction sets, cores, memory,
GPUs, package versions, source commit), collected once. `settings()` is what
one process runs with: the environment that selects kernels and allocators
(TF_ENABLE_ONEDNN_OPTS, TF_CPU_ALLOCATOR_USE_BFC, MALLOC_*, XLA_FLAGS, ...)
and, for each framework already imported, its thread counts and whether
oneDNN is really on. `load_average()` is taken before and after a run: a
figure taken at load 3 on two cores is not a figure of the machine.
Nothing here imports a framework.
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Mapping

PACKAGES = (
    "vswin-serving", "numpy", "grpcio", "protobuf", "opencv-python-headless", "tensorflow",
    "tensorflow-serving-api", "keras", "jax", "torch", "av",
)  # fmt: skip


# Environment variables that change which kernels, allocators and thread pools a run uses.
SETTING_VARIABLES = (
    "TF_ENABLE_ONEDNN_OPTS", "TF_CPU_ALLOCATOR_USE_BFC", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
    "XLA_FLAGS", "TF_XLA_FLAGS", "OMP_NUM_THREADS", "KERAS_BACKEND", "JAX_PLATFORMS", "CUDA_VISIBLE_DEVICES",
    "LD_PRELOAD", "ONEDNN_DEFAULT_FPMATH_MODE",
)  # fmt: skip
SETTING_PREFIXES = ("MALLOC_", "GLIBC_TUNABLES", "XLA_PYTHON_CLIENT_", "TORCHINDUCTOR_")
# Instruction sets that decide which kernels oneDNN, XLA and PyTorch pick.
_ISA_PREFIXES = ("sse4", "avx", "fma", "f16c", "amx", "vnni")


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def _cpu_model() -> str:
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def instruction_sets(flags: str | None = None) -> list[str]:
    """The vector instruction sets among the CPU flags (/proc/cpuinfo), sorted: avx2, avx512f, amx_bf16, ..."""
    words = (flags if flags is not None else _cpuinfo().get("flags", "")).split()
    return sorted({word for word in words if word.startswith(_ISA_PREFIXES)})


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or None where the OS has none."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of `env` (default: this process) that select kernels, allocators and threads."""
    env = os.environ if env is None else env
    return {key: env[key] for key in sorted(env)
            if key in SETTING_VARIABLES or key.startswith(SETTING_PREFIXES)}  # fmt: skip


def settings() -> dict[str, object]:
    """What this process runs with: the setting variables and each imported framework's threads and kernels.

    Reads only frameworks that are already imported, so it reflects the
    process that ran the figures and imports nothing itself.
    """
    record: dict[str, object] = {"environment": environment()}
    if "tensorflow" in sys.modules:
        record["tensorflow"] = _tensorflow_settings()
    if "torch" in sys.modules:
        record["torch"] = _torch_settings()
    if "jax" in sys.modules:
        record["jax"] = _jax_settings()
    return record


def _tensorflow_settings() -> dict[str, object]:
    import tensorflow as tf
    from tensorflow.python.util import _pywrap_util_port

    threading = tf.config.threading
    return {
        # 0 means TensorFlow's default: one intra-op thread per core, inter-op chosen by TensorFlow.
        "intra_op_threads": threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": threading.get_inter_op_parallelism_threads(),
        "onednn_enabled": bool(_pywrap_util_port.IsMklEnabled()),
        "devices": [device.name for device in tf.config.list_logical_devices()],
    }


def _torch_settings() -> dict[str, object]:
    import torch

    record: dict[str, object] = {
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "mkldnn_available": torch.backends.mkldnn.is_available(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        record["cuda_device"] = torch.cuda.get_device_name()
        record["allow_tf32"] = torch.backends.cuda.matmul.allow_tf32
        record["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
    return record


def _jax_settings() -> dict[str, object]:
    import jax

    return {"backend": jax.default_backend(), "devices": [str(device) for device in jax.devices()],
            "default_matmul_precision": str(jax.config.jax_default_matmul_precision)}


def _memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _gpus() -> list[str]:
    """GPU names from nvidia-smi, or [] on a machine without one."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def _source_commit() -> str | None:
    """The git commit of this checkout (with '+dirty' for local changes), or None outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def _versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@functools.lru_cache(maxsize=1)
def describe() -> dict[str, object]:
    """Collected once per process: later calls return the same dict."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = _cpuinfo()
    return {
        "hostname": platform.node(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpu_vendor": info.get("vendor_id"),
        "cpu_family_model": f"{info.get('cpu family', '?')}/{info.get('model', '?')}" if info else None,
        "cpu_instruction_sets": instruction_sets(info.get("flags", "")),
        "cores": cores,
        "memory_gib": _memory_gib(),
        "gpus": _gpus(),
        "packages": _versions(),
        "vswin_commit": _source_commit(),
    }
