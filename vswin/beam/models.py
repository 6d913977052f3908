"""Where the features come from: a served model (`RemoteModel`) or an export loaded in each worker (`ExportedModel`).

Both are small picklable descriptions that travel to the workers. `info()` is
what the decode step needs (geometry, preprocessing, model name and version) and runs in
the workers, so the machine that launches a Dataflow job needs no route to the
server; `handler()` is the Beam ModelHandler that RunInference runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from vswin import contract
from vswin.client.metadata import ModelInfo, SignatureInfo, TensorSpec

# Signatures that take uint8 frames (or images) and return features: the ones the pipeline can call.
FRAME_SIGNATURES = (contract.SERVING_DEFAULT, contract.FEATURES_GRAPH, contract.FEATURES_XLA)


@dataclass(frozen=True)
class RemoteModel:
    """A model on TF Serving (or `vswin serve`), called with vswin.client over gRPC; no TensorFlow.

    `timeout` is each request's deadline, the client's own retries with backoff
    (UNAVAILABLE, RESOURCE_EXHAUSTED) included; `num_retries` more attempts of a
    whole batch follow through Beam's RemoteModelHandler (exponential backoff from
    5 s, for a replica that restarts). `max_in_flight` bounds the Predict calls one
    worker process has open at once, whatever the number of its threads.
    `channel` holds ChannelSettings keyword arguments (tls, root_certificates, ...).
    """

    target: str
    model: str
    version: int | None = None
    label: str | None = None
    signature: str = contract.SERVING_DEFAULT
    timeout: float = 60.0
    max_batch: int = contract.MAX_BATCH_SIZE
    max_in_flight: int = 4
    num_retries: int = 3
    channel: dict[str, object] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        _check_signature(self.signature)
        if self.max_in_flight < 1 or self.max_batch < 1 or self.num_retries < 0:
            raise ValueError(f"max_in_flight and max_batch must be >= 1, num_retries >= 0: {self}")

    def client(self, version: int | None = None):
        """A VideoSwinClient for this model; `version` pins it (and drops the label)."""
        from vswin.client import VideoSwinClient

        pinned = version is not None
        return VideoSwinClient(self.target, self.model, version=version if pinned else self.version,
                               label=None if pinned else self.label, signature=self.signature,
                               timeout=self.timeout, max_batch=self.max_batch, **self.channel)

    def info(self) -> ModelInfo:
        with self.client() as client:
            return client.model_info()

    def handler(self):
        from vswin.beam.remote import ServingModelHandler

        return ServingModelHandler(self)

    def describe(self) -> str:
        return f"{self.model} on {self.target}"


@dataclass(frozen=True)
class ExportedModel:
    """A `vswin export` version directory (BASE/NAME/VERSION, any path TensorFlow reads: local, gs://)
    loaded with tf.saved_model.load in each worker.

    `model_copies`: None loads one copy per worker process; N shares N copies
    among all processes of a worker (Beam's model_copies: one per GPU).
    """

    path: str
    signature: str = contract.SERVING_DEFAULT
    max_batch: int = contract.MAX_BATCH_SIZE
    model_copies: int | None = None

    def __post_init__(self) -> None:
        _check_signature(self.signature)
        if self.max_batch < 1 or (self.model_copies is not None and self.model_copies < 1):
            raise ValueError(f"max_batch and model_copies must be >= 1: {self}")

    def metadata(self) -> dict:
        """The export's vswin.json, read through Beam's FileSystems (no TensorFlow needed)."""
        from apache_beam.io.filesystem import CompressionTypes
        from apache_beam.io.filesystems import FileSystems

        path = FileSystems.join(self.path, contract.ASSETS_EXTRA, contract.METADATA_FILE)
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            return json.load(handle)

    def info(self) -> ModelInfo:
        return info_from_metadata(self.metadata(), self.signature)

    def handler(self):
        from vswin.beam.inprocess import SavedModelHandler

        return SavedModelHandler(self)

    def describe(self) -> str:
        return f"the export in {self.path}"


def info_from_metadata(metadata: dict, signature: str) -> ModelInfo:
    """The ModelInfo a server would answer for this export, from its vswin.json: the signature's input (uint8
    `frames` [B, T, H, W, 3] from the `clip` block, or `images` [B, H, W, 3] from the `image` block), and the
    export's metadata and preprocessing, so the files are cut and recorded as the model was evaluated."""
    if signature not in metadata.get("signatures", ()):
        raise ValueError(f"the export has no signature {signature!r}; it has {metadata.get('signatures')}")
    family = metadata.get("family", contract.VIDEO)
    if family == contract.VIDEO:
        clip = metadata["clip"]
        view = (clip["clip_len"], clip["height"], clip["width"], 3)
    else:
        image = metadata["image"]
        view = (image["height"], image["width"], 3)
    pixels = TensorSpec(contract.uint8_input(family), "DT_UINT8", (None, *view))
    features = TensorSpec(contract.FEATURES, "DT_FLOAT", (None, metadata["features_dim"]))
    spec = SignatureInfo(signature, "", inputs={pixels.name: pixels}, outputs={features.name: features})
    preprocessing = metadata.get("preprocessing")
    return ModelInfo(name=metadata["model_name"], version=int(metadata["version"]), signature=signature,
                     signatures={signature: spec}, export=metadata,
                     preprocessing=None if preprocessing is None else contract.Preprocessing.from_dict(preprocessing))


def _check_signature(signature: str) -> None:
    if signature not in FRAME_SIGNATURES:
        raise ValueError(f"signature must take uint8 frames and return features: one of {FRAME_SIGNATURES}, "
                         f"not {signature!r}")
