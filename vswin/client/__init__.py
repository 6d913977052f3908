"""Thin gRPC client for TF Serving: video decode, clip sampling, requests. Never imports TensorFlow."""
