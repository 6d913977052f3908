"""Remote inference: views to TF Serving (or `vswin serve`) through vswin.client, as a Beam RemoteModelHandler.

No TensorFlow: the workers carry grpcio, protobuf, numpy and OpenCV only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import numpy as np
from apache_beam.ml.inference.base import RemoteModelHandler

from vswin.beam import inference
from vswin.beam.elements import View, ViewFeatures
from vswin.beam.metrics import FirstUse
from vswin.beam.models import RemoteModel
from vswin.client.errors import DeadlineExceeded, ModelNotFound, ServerUnavailable

log = logging.getLogger(__name__)


class ServedModel:
    """One worker process's way to the model, made once and shared by its threads.

    Requests go to one pinned version, so every feature row knows the version
    that computed it: the one asked for, or the one the label or "latest"
    resolved to. When that version goes away (a rollout), the model is resolved
    again and the batch resent once. A semaphore bounds the Predict calls in
    flight from this process.
    """

    def __init__(self, spec: RemoteModel) -> None:
        self.spec = spec
        self.first_use = FirstUse()
        self._slots = threading.BoundedSemaphore(spec.max_in_flight)
        self._lock = threading.Lock()
        self._resolver = spec.client()
        self._pinned, self._version = self._pin()

    def _pin(self, refresh: bool = False):
        if self.spec.version is not None:
            return self._resolver, self.spec.version
        version = self._resolver.model_info(refresh=refresh).version
        log.info("%s: requests go to version %d", self.spec.describe(), version)
        return self.spec.client(version=version), version

    def features(self, views: np.ndarray) -> tuple[np.ndarray, int]:
        with self._slots:
            client, version = self._pinned, self._version
            try:
                return client.features(views), version
            except ModelNotFound:
                if self.spec.version is not None:
                    raise
            with self._lock:
                if self._pinned is client:  # the first thread to notice re-resolves for all
                    self._pinned, self._version = self._pin(refresh=True)
                client, version = self._pinned, self._version
            return client.features(views), version


def is_transient(error: Exception) -> bool:
    """Worth another attempt of the whole batch: the server was unreachable, shed load, or ran out of time."""
    return isinstance(error, (ServerUnavailable, DeadlineExceeded))


class ServingModelHandler(RemoteModelHandler[View, ViewFeatures, ServedModel]):
    """Beam's remote-inference handler over the gRPC client: client-side throttling and batch retries from
    Beam, per-request retries with backoff and deadlines from vswin.client.

    Beam's throttler delays a worker's next requests (5 s at a time) in proportion to the requests that did not
    succeed. Only transient errors say the server is overloaded; a batch it answered with an error (e.g.
    INVALID_ARGUMENT) counts as accepted, as in the SRE book's client-side throttling, so a bad file does not
    slow the files after it.
    """

    def __init__(self, spec: RemoteModel) -> None:
        super().__init__(namespace="vswin", num_retries=spec.num_retries, retry_filter=is_transient)
        self.spec = spec

    def create_client(self) -> ServedModel:
        return ServedModel(self.spec)

    def request(self, batch: Sequence[View], model: ServedModel, inference_args=None) -> list[ViewFeatures]:
        sent_ms = time.time() * 1000
        try:
            return inference.infer(batch, model)
        except Exception as error:
            if not is_transient(error):
                self.throttler.successful_request(sent_ms)  # no sign of overload
            raise

    def batch_elements_kwargs(self) -> dict[str, int]:
        return inference.batching(self.spec.max_batch)

    def get_num_bytes(self, batch: Sequence[View]) -> int:
        return inference.view_bytes(batch)

    def get_metrics_namespace(self) -> str:
        return "vswin_inference"
