#!/usr/bin/env bash
# Fill .cache/gpu for benchmarks/gpu/run.sh, on a machine with network access (see benchmarks/gpu/README.md).
#
#   benchmarks/gpu/prepare.sh PATH_TO_Video-Swin-Transformer_CHECKOUT [PYTHON_VERSION]
#
# (a bare clone works too: the file is then taken from its HEAD)
# Copies the original's backbone file (the only file of it the benchmark runs; never committed here) and
# downloads the wheels keras needs on a GPU image without it: keras, namex and optree, for CPython
# PYTHON_VERSION (default 3.12) on manylinux x86_64. About 3 MB in all.
set -euo pipefail
cd "$(dirname "$0")/../.."
ORIGINAL=${1:?usage: benchmarks/gpu/prepare.sh PATH_TO_Video-Swin-Transformer_CHECKOUT [PYTHON_VERSION]}
PYVER=${2:-3.12}
CACHE=.cache/gpu
FILE=mmaction/models/backbones/swin_transformer.py

mkdir -p "$CACHE/Video-Swin-Transformer/$(dirname "$FILE")" "$CACHE/wheels"
if [ -f "$ORIGINAL/$FILE" ]; then
    cp "$ORIGINAL/$FILE" "$CACHE/Video-Swin-Transformer/$FILE"
else  # a bare clone or mirror: take the file from its HEAD
    git --git-dir="$ORIGINAL" show "HEAD:$FILE" > "$CACHE/Video-Swin-Transformer/$FILE"
fi
KERAS=$(python3 -c "import keras; print(keras.__version__)" 2>/dev/null || echo 3.15.1)
python3 -m pip download --quiet --no-deps --only-binary=:all: --implementation cp --python-version "$PYVER" \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$CACHE/wheels" "keras==$KERAS" namex optree
du -sh "$CACHE"
