#!/usr/bin/env bash
# The GPU table of benchmarks/README.md in one command, under 8 minutes: see benchmarks/gpu/README.md.
#
#   benchmarks/gpu/run.sh [gpu_bench.py options]      e.g. --batch-sizes 8 --budget-s 300
#
# Needs python3 with PyTorch and JAX (CUDA) and numpy; no TensorFlow, no network. What it needs beyond that
# travels in .cache/gpu (benchmarks/gpu/prepare.sh fills it): the original Video Swin checkout and, where the
# machine has no keras, wheels of keras and its pure dependencies, installed here into .cache/gpu/site.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
CACHE=.cache/gpu

# Keras on JAX, the workers' backend: its default, TensorFlow, is not on the GPU image (and loading it here
# only to see that keras imports took 5 CPU-s where it is installed).
if ! KERAS_BACKEND=jax "$PYTHON" -c "import keras" 2>/dev/null; then
    if [ ! -d "$CACHE/site/keras" ]; then
        ls "$CACHE"/wheels/keras-*.whl >/dev/null 2>&1 || {
            echo "keras is not installed and $CACHE/wheels has no keras wheel: run benchmarks/gpu/prepare.sh" >&2
            exit 2
        }
        "$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile --target "$CACHE/site" "$CACHE"/wheels/*.whl
    fi
    export PYTHONPATH="$PWD/$CACHE/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

ORIGINAL=("--original-repo" "$CACHE/Video-Swin-Transformer")
for arg in "$@"; do [ "$arg" = "--original-repo" ] && ORIGINAL=(); done
exec "$PYTHON" benchmarks/gpu/gpu_bench.py "${ORIGINAL[@]}" "$@"
