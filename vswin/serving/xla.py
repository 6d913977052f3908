"""TF Serving's XLA switch, by TensorFlow's own mechanism.

`tensorflow_model_server` calls `tensorflow::DisableXlaCompilation()`
unless `--xla_cpu_compilation_enabled` or `--xla_gpu_compilation_enabled`
is set (model_servers/main.cc); every XLA compilation then fails with
INTERNAL "XLA compilation disabled" (tensorflow/compiler/jit, device
compiler). TensorFlow's Python API does not wrap that switch, but
libtensorflow_cc exports it, so it is called here through ctypes.
The switch is process-wide.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

_DISABLE = "_ZN10tensorflow21DisableXlaCompilationEv"
_ENABLE = "_ZN10tensorflow20EnableXlaCompilationEv"
_QUERY = "_ZN10tensorflow20FailOnXlaCompilationEv"


@functools.cache
def _library() -> ctypes.CDLL:
    import tensorflow as tf

    library = ctypes.CDLL(str(Path(tf.__file__).parent / "libtensorflow_cc.so.2"))
    getattr(library, _QUERY).restype = ctypes.c_bool
    return library


def set_xla_compilation(enabled: bool) -> None:
    """Allow or refuse XLA JIT compilation in this process (refused: INTERNAL 'XLA compilation disabled')."""
    getattr(_library(), _ENABLE if enabled else _DISABLE)()


def xla_compilation_enabled() -> bool:
    """Whether XLA JIT compilation is allowed in this process."""
    return not getattr(_library(), _QUERY)()


XLA_DISABLED = "XLA compilation disabled"
XLA_DISABLED_HINT = (
    "start the server with --xla_cpu_compilation_enabled=true (CPU) or --xla_gpu_compilation_enabled=true (GPU) "
    "to run XLA signatures, or export with `vswin export --default-signature graph` for servers without XLA"
)


def explain_xla_disabled(message: str) -> str:
    """TensorFlow's "XLA compilation disabled" error with the flag that allows it; other messages unchanged."""
    if XLA_DISABLED in message and XLA_DISABLED_HINT not in message:
        return f"{message.rstrip()} ({XLA_DISABLED_HINT})"
    return message
