"""Keras 3 Video Swin Transformer: layers, backbone, presets, checkpoint conversion."""
