"""The window attention as TensorFlow's oneDNN graph runs it: no pass of its own for the relative-position bias.

The scores are laid out heads first so that the bias is a [heads, 1, N, N]
addend, the shape TensorFlow's oneDNN remapper fuses (with the scale) into
the q.k batched matmul. A change of layout that loses the fusion brings an
extra pass over the largest tensor of the model back (~5 % at stage 0).
"""

from __future__ import annotations

import json
import subprocess
import sys

_SCRIPT = """
import collections, glob, json, sys, tempfile
import numpy as np
import tensorflow as tf
from tensorflow.python.util import _pywrap_util_port
from tensorflow.tsl.profiler.protobuf import xplane_pb2
import vswin.model

model = vswin.model.build(sys.argv[1], include_head=False)
forward = tf.function(lambda x: model(x)["features"], autograph=False)
clips = tf.constant(np.random.default_rng(0).standard_normal((1, 8, 32, 32, 3)).astype("float32"))
forward(clips)
ops = collections.Counter()
with tempfile.TemporaryDirectory() as logdir:
    tf.profiler.experimental.start(logdir)
    forward(clips)
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    space.ParseFromString(open(glob.glob(logdir + "/**/*.xplane.pb", recursive=True)[0], "rb").read())
for plane in space.planes:
    for line in plane.lines:
        for event in line.events:
            name = plane.event_metadata[event.metadata_id].name
            if ":" in name:
                ops[name.rsplit(":", 1)[1]] += 1
blocks = sum(stage.depth for stage in model.backbone.stages)
print(json.dumps({"onednn": bool(_pywrap_util_port.IsMklEnabled()), "blocks": blocks, "ops": ops}))
"""


def test_the_bias_add_is_fused_into_every_blocks_qk_matmul(micro_arch, subprocess_env):
    env = {**subprocess_env, "TF_ENABLE_ONEDNN_OPTS": "1", "KERAS_BACKEND": "tensorflow"}
    result = subprocess.run([sys.executable, "-c", _SCRIPT, str(micro_arch)], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["onednn"] and report["blocks"] == 8
    # One fused q.k (+ scale + bias) per block; the other batched matmul of a block is probabilities.v.
    assert report["ops"].get("_MklFusedBatchMatMulV2") == report["blocks"], report["ops"]
    assert report["ops"].get("_MklBatchMatMulV2") == report["blocks"], report["ops"]
