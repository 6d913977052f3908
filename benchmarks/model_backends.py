"""The CPU table of benchmarks/README.md: the forward pass on every path, interleaved, in one run.

    python benchmarks/model_backends.py --original-repo PATH/Video-Swin-Transformer --rounds 7

is `vswin bench model` (every arm of vswin.bench.arms.CPU_TABLE: the original
PyTorch code, Keras on TF graph without and with oneDNN, XLA, XLA with its
oneDNN and XNNPACK dot fusions, JAX jit, the export's XLA and graph
signatures; Swin-T, 1x32x224x224) writing benchmarks/results/model_backends_cpu.json.
Every `vswin bench model` option works here too.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vswin.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["bench", "model", "--out", "benchmarks/results/model_backends_cpu.json", *sys.argv[1:]]))
