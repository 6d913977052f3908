"""vswin-serving: Video Swin Transformer feature extractors on TensorFlow Serving.

Importing this package imports nothing heavy: the client must stay free of
TensorFlow, so each part (model, export, serving, client, bench) is imported
on its own.
"""

__version__ = "0.1.0"
