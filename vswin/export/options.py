"""Export choices, kept free of TensorFlow so the `vswin` CLI can offer them without importing it."""

# --precision -> Keras dtype policy (weights stay float32; compute runs in the named precision).
PRECISIONS = {"float32": None, "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
