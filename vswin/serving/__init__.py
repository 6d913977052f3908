"""Local model server speaking TensorFlow Serving's gRPC protocol; models.config tooling."""
