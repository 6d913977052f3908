"""The serving path's process settings (contract.SERVING_ENVIRONMENT), set before TensorFlow loads.

TensorFlow reads TF_ENABLE_ONEDNN_OPTS and TF_CPU_ALLOCATOR_USE_BFC once, when
it initialises, so they must be in the environment before the first
`import tensorflow` of the process: the `vswin serve`, `vswin export` and
`vswin bench` handlers call `apply()` first thing. A value the user already
set wins, so every setting can still be turned off (e.g.
TF_ENABLE_ONEDNN_OPTS=0 vswin serve ...).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import MutableMapping

from vswin import contract

log = logging.getLogger(__name__)


def apply(env: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set every serving setting the user has not set; returns the ones this call set."""
    env = os.environ if env is None else env
    added = {key: value for key, value in contract.SERVING_ENVIRONMENT.items() if key not in env}
    env.update(added)
    if env is os.environ and "tensorflow" in sys.modules and added:
        log.warning("TensorFlow was imported before the serving settings %s: they apply to new processes only",
                    added)  # fmt: skip
    return added


def describe(env: MutableMapping[str, str] | None = None) -> str:
    """The serving settings in force, for a start-up log line."""
    env = os.environ if env is None else env
    return " ".join(f"{key}={env.get(key, '(unset)')}" for key in contract.SERVING_ENVIRONMENT)


def describe_tensorflow() -> str:
    """TensorFlow's version and whether its oneDNN kernels are on, as this process's TensorFlow read the settings."""
    import tensorflow as tf
    from tensorflow.python.util import _pywrap_util_port

    return f"TensorFlow {tf.__version__}, oneDNN {'on' if _pywrap_util_port.IsMklEnabled() else 'off'}"
