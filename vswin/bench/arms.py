"""The arms of a model benchmark: what runs the forward pass, with which options, in which process setting.

An arm is one way to compute the same function (the Video Swin forward pass
with the same weights on the same clips). Settings a framework reads once per
process (`TF_ENABLE_ONEDNN_OPTS`, `XLA_FLAGS`, the allocator, the Keras
backend) are the arm's `env`; arms with different process settings always
run in different worker processes (`worker` names the process).

Names on the command line: a catalog entry, optionally followed by variants
that add environment, e.g. `tf_onednn+bfc+malloc`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from vswin import contract

# Backends a worker knows how to run (vswin.bench.backends.<kind>).
# torch: the original PyTorch code; keras_*: vswin's Keras model; savedmodel: an export's signature.
TORCH, KERAS_TF, KERAS_JAX, SAVEDMODEL = "torch", "keras_tf", "keras_jax", "savedmodel"
KINDS = (TORCH, KERAS_TF, KERAS_JAX, SAVEDMODEL)
PRECISIONS = ("float32", "bfloat16")


@dataclasses.dataclass(frozen=True)
class Arm:
    """One arm: `kind` and `options` say what runs, `env` the process setting, `worker` the process."""

    name: str
    kind: str
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    worker: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"arm {self.name!r}: kind must be one of {KINDS}, not {self.kind!r}")
        if self.options.get("precision", "float32") not in PRECISIONS:
            raise ValueError(f"arm {self.name!r}: precision must be one of {PRECISIONS}")
        if not self.worker:
            object.__setattr__(self, "worker", self.name)

    @property
    def writes_original_weights(self) -> bool:
        """Whether this arm creates the shared weights in the original's .pth layout (the original PyTorch code)."""
        return self.kind == TORCH

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# XLA's CPU options worth a row: library fusions of dots (oneDNN or XNNPACK) instead of XLA's own codegen.
XLA_ONEDNN_FLAGS = "--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_fusion_type=dot"
XLA_XNN_FLAGS = "--xla_cpu_experimental_xnn_fusion_type=dot"

_ONEDNN_OFF, _ONEDNN_ON = {"TF_ENABLE_ONEDNN_OPTS": "0"}, {"TF_ENABLE_ONEDNN_OPTS": "1"}

CATALOG: dict[str, Arm] = {arm.name: arm for arm in (
    Arm("pytorch", TORCH, {}, description="the original PyTorch implementation, eager"),
    Arm("pytorch_compile", TORCH, {"compile": True},
        description="the original PyTorch implementation under torch.compile"),
    Arm("tf_graph", KERAS_TF, {"jit": False}, _ONEDNN_OFF, description="Keras on TensorFlow, tf.function, oneDNN off"),
    Arm("tf_onednn", KERAS_TF, {"jit": False}, _ONEDNN_ON, description="Keras on TensorFlow, tf.function, oneDNN on"),
    Arm("tf_xla", KERAS_TF, {"jit": True}, description="Keras on TensorFlow, tf.function(jit_compile=True)"),
    Arm("tf_xla_onednn", KERAS_TF, {"jit": True}, {"XLA_FLAGS": XLA_ONEDNN_FLAGS},
        description="XLA with oneDNN dot fusion"),
    Arm("tf_xla_xnn", KERAS_TF, {"jit": True}, {"XLA_FLAGS": XLA_XNN_FLAGS}, description="XLA with XNNPACK dot fusion"),
    Arm("jax_jit", KERAS_JAX, {}, {"JAX_PLATFORMS": "cpu"}, description="Keras on JAX, jax.jit, weights as arguments"),
    Arm("export_xla", SAVEDMODEL, {"signature": contract.XLA}, contract.SERVING_ENVIRONMENT,
        description="the export's XLA signature in-process, uint8 frames in, vswin serve's settings"),
    Arm("export_graph", SAVEDMODEL, {"signature": contract.GRAPH}, contract.SERVING_ENVIRONMENT,
        description="the export's graph signature in-process, uint8 frames in, vswin serve's settings"),
)}  # fmt: skip

# The CPU table of benchmarks/README.md, in its row order; pytorch rows only with --original-repo.
# tf_onednn+bfc and export_graph run the project's CPU default (contract.SERVING_ENVIRONMENT, graph).
CPU_TABLE = ("pytorch", "tf_graph", "tf_onednn", "tf_onednn+bfc", "tf_xla", "tf_xla_onednn", "tf_xla_xnn",
             "jax_jit", "export_graph", "export_xla")  # fmt: skip

# glibc malloc for large short-lived tensors: keep freed memory instead of returning it to the kernel, so
# each call does not fault in fresh pages (mmap threshold at glibc's 32 MiB maximum for 64-bit).
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 30),
              "MALLOC_TOP_PAD_": str(256 << 20)}  # fmt: skip
VARIANTS: dict[str, dict[str, str]] = {
    "bfc": {"TF_CPU_ALLOCATOR_USE_BFC": "true"},
    "malloc": MALLOC_ENV,
    "onednn": dict(_ONEDNN_ON),
    "noonednn": dict(_ONEDNN_OFF),
}


def parse_arm(text: str) -> Arm:
    """`NAME[+VARIANT...]`: a catalog arm with each variant's environment added (later ones win)."""
    name, *variants = text.strip().split("+")
    if name not in CATALOG:
        raise ValueError(f"unknown arm {name!r}: expected one of {sorted(CATALOG)} (with +{'/+'.join(VARIANTS)})")
    base = CATALOG[name]
    env = dict(base.env)
    for variant in variants:
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r} in arm {text!r}: expected one of {sorted(VARIANTS)}")
        env.update(VARIANTS[variant])
    return dataclasses.replace(base, name=text.strip(), env=env, worker=text.strip())


def parse_arms(text: str) -> list[Arm]:
    """Comma-separated arm names; duplicates are an error (each arm is one row of the table)."""
    arms = [parse_arm(part) for part in text.split(",") if part.strip()]
    names = [arm.name for arm in arms]
    if not arms:
        raise ValueError("no arms given")
    if len(set(names)) != len(names):
        raise ValueError(f"arms repeat: {names}")
    return arms
