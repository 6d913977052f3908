"""Export choices, kept free of TensorFlow so the `vswin` CLI can offer them without importing it."""

from vswin.contract import GRAPH, XLA  # noqa: F401  (the --default-signature choices)

# --precision -> Keras dtype policy (weights stay float32; compute runs in the named precision).
PRECISIONS = {"float32": None, "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
