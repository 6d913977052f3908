"""The Keras model of a case (or one stage of it) with the case's shared weights, on this process's Keras backend."""

from __future__ import annotations

import keras
from keras import ops

from vswin.bench.case import Case, clips
from vswin.contract import FEATURES
from vswin.export.options import PRECISIONS


def load(case: Case, precision: str = "float32", write_weights: bool = False):
    """`VideoSwin` without head; with `write_weights`, seeded random weights are first saved to case.weights."""
    import vswin.model
    from vswin.model.convert import save_weights_atomically

    if write_weights:
        if not case.weights.endswith(".weights.h5"):
            raise ValueError(f"a Keras arm writes .weights.h5, not {case.weights}")
        keras.utils.set_random_seed(case.seed)
        save_weights_atomically(vswin.model.build(case.arch, include_head=False), case.weights)
    return vswin.model.load(case.weights, case.arch, dtype=PRECISIONS[precision])


def load_with_inputs(case: Case, precision: str = "float32", write_weights: bool = False):
    """(model, inputs): what an arm times, called as `model(inputs)["features"]`.

    The whole model on the case's clips, or for a stage case that stage
    alone (`StageProbe`) on what the patch embedding and the stages before it
    make of those clips.
    """
    model = load(case, precision, write_weights)
    if case.stage is None:
        return model, clips(case)
    backbone = model.backbone
    if case.stage >= len(backbone.stages):
        raise ValueError(f"stage {case.stage} of {case.arch}: it has stages 0-{len(backbone.stages) - 1}")
    # One compiled call (jax.jit on JAX, a tf.function on TF): op by op, JAX compiles every operation of
    # the earlier stages on its own (preparing stage 3 of the micro model took 11.4 CPU-s, now 3.5).
    x = StageInput(backbone, case.stage).predict_on_batch(clips(case))
    return StageProbe(backbone.stages[case.stage]), ops.convert_to_numpy(x)


class StageInput(keras.Model):
    """The patch embedding and the stages before `stage`: what that stage takes for a clip."""

    def __init__(self, backbone: keras.layers.Layer, stage: int, **kwargs):
        super().__init__(name=f"input_of_stage{stage}", **kwargs)
        self.patch_embed = backbone.patch_embed
        self.earlier = list(backbone.stages[:stage])
        self.built = backbone.built  # no weights of its own

    def call(self, x):
        x = self.patch_embed(x)
        for stage in self.earlier:
            x = stage(x)
        return x


class StageProbe(keras.Model):
    """One stage as a model whose `features` are its output mean-pooled over T, H, W, like the model's."""

    def __init__(self, stage: keras.layers.Layer, **kwargs):
        super().__init__(name=f"probe_{stage.name}", **kwargs)
        self.stage = stage
        self.built = stage.built  # no weights of its own

    def call(self, x):
        return {FEATURES: ops.mean(ops.cast(self.stage(x), "float32"), axis=(1, 2, 3))}
