"""VideoSwinClient: the synchronous gRPC client for Video Swin models on TF Serving."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import numpy as np

from vswin import contract
from vswin.client import protos
from vswin.client import requests as rq
from vswin.client.base import ClientBase
from vswin.client.errors import (
    RETRYABLE,
    DeadlineExceeded,
    InvalidInput,
    ModelNotFound,
    ServerUnavailable,
    from_rpc_error,
)
from vswin.client.metadata import ModelInfo, parse_metadata

if TYPE_CHECKING:
    from vswin.client.extract import ExtractResult

log = logging.getLogger(__name__)


class VideoSwinClient(ClientBase):
    """Calls one model on a TF Serving (or `vswin serve`) endpoint over gRPC.

    `timeout` is each call's deadline in seconds, retries included; retries
    (see RetryPolicy) happen on UNAVAILABLE and RESOURCE_EXHAUSTED only.
    `max_batch` caps clips per Predict; if the server's batcher rejects a
    batch as too large, the client halves it and remembers. Channel keyword
    arguments (tls, root_certificates, client_certificate, client_key,
    server_name, max_message_bytes, keepalive_time_ms, lb_policy,
    extra_options) go to ChannelSettings. Thread-safe; use as a context
    manager or call close().
    """

    grpc_module = grpc
    lock_type = threading.Lock

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> VideoSwinClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VideoSwinClient({self.target!r}, {self.model.describe()}, signature={self.signature!r})"

    # -- RPCs ---------------------------------------------------------------------------------

    def _call(self, method: tuple, request: object, timeout: float | None) -> object:
        """One unary call with the deadline covering every attempt, retrying only retryable codes."""
        path = method[0]
        deadline = time.monotonic() + (timeout or self.timeout)
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineExceeded(
                    f"{path} on {self.target}: deadline passed after {attempt} attempt(s)",
                    code=grpc.StatusCode.DEADLINE_EXCEEDED,
                )
            try:
                return self._methods[path](request, timeout=remaining)
            except grpc.RpcError as err:
                error = from_rpc_error(err, path, self.target)
                attempt += 1
                if error.code not in RETRYABLE or attempt >= self.retry.max_attempts:
                    raise error from None
                delay = self.retry.delay(attempt - 1)
                if time.monotonic() + delay >= deadline:
                    raise error from None
                log.warning("%s; retry %d/%d in %.2fs", error, attempt, self.retry.max_attempts - 1, delay)
                time.sleep(delay)

    def model_info(self, signature: str | None = None, refresh: bool = False, timeout: float | None = None) -> ModelInfo:
        """Signatures, clip geometry (T, H, W), feature dim and version, from GetModelMetadata; cached."""
        signature = signature or self.signature
        with self._lock:
            if not refresh and signature in self._info:
                return self._info[signature]
        response = self._call(protos.GET_MODEL_METADATA, rq.metadata_request(self.model, signature), timeout)
        info = parse_metadata(response, signature)
        with self._lock:
            self._info[signature] = info
        return info

    def status(self, timeout: float | None = None) -> list[rq.VersionStatus]:
        """The model's versions and their states (GetModelStatus on ModelService)."""
        response = self._call(protos.GET_MODEL_STATUS, rq.status_request(self.model), timeout)
        return rq.parse_status(response)

    def wait_ready(self, timeout: float = 60.0, interval: float = 0.5) -> ModelInfo:
        """Block until the server answers GetModelMetadata for this model (a server or model still
        starting answers UNAVAILABLE or NOT_FOUND), then return its ModelInfo."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.model_info(refresh=True, timeout=max(interval, deadline - time.monotonic()))
            except (ServerUnavailable, ModelNotFound, DeadlineExceeded) as err:
                if time.monotonic() + interval >= deadline:
                    raise DeadlineExceeded(
                        f"{self.model.describe()} on {self.target} not ready after {timeout:.0f}s: {err}",
                        code=grpc.StatusCode.DEADLINE_EXCEEDED,
                    ) from err
                time.sleep(interval)

    def predict(
        self,
        inputs: dict[str, np.ndarray],
        signature: str | None = None,
        output_filter: list[str] | None = None,
        timeout: float | None = None,
    ) -> dict[str, np.ndarray]:
        """Raw Predict: named numpy inputs in, named numpy outputs out."""
        request = rq.encode_predict_request(self.model, signature or self.signature, inputs, output_filter)
        return rq.predict_outputs(self._call(protos.PREDICT, request, timeout))

    def features(self, frames: np.ndarray, timeout: float | None = None) -> np.ndarray:
        """uint8 clips [B, T, H, W, 3] (RGB, model geometry) -> float32 features [B, C].

        Sent in requests of at most `max_batch` clips; `timeout` applies to each request.
        """
        info = self.model_info()
        frames = rq.check_frames(frames, info)
        return self._batched(frames, lambda batch: self._features_once(batch, info, timeout))

    def classify(self, frames: np.ndarray, timeout: float | None = None) -> rq.Classification:
        """Top-k labels, classes and scores per clip from the `classify` signature (models exported with a head)."""
        info = self.model_info(contract.CLASSIFY)
        frames = rq.check_frames(frames, info)
        outputs = self._batched_outputs(
            frames, lambda batch: self.predict({info.input.name: batch}, signature=contract.CLASSIFY, timeout=timeout)
        )
        return rq.parse_classification(outputs)

    def _features_once(self, batch: np.ndarray, info: ModelInfo, timeout: float | None) -> np.ndarray:
        outputs = self.predict({info.input.name: batch}, output_filter=[contract.FEATURES], timeout=timeout)
        if "features" not in outputs:
            raise InvalidInput(f"signature {self.signature!r} returned {sorted(outputs)}, not 'features'")
        return outputs["features"]

    def _batched(self, frames: np.ndarray, run: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        return np.concatenate(list(self._chunks(frames, run)), axis=0)

    def _batched_outputs(
        self, frames: np.ndarray, run: Callable[[np.ndarray], dict[str, np.ndarray]]
    ) -> dict[str, np.ndarray]:
        parts = list(self._chunks(frames, run))
        return {key: np.concatenate([p[key] for p in parts], axis=0) for key in parts[0]}

    def _chunks(self, frames: np.ndarray, run: Callable[[np.ndarray], object]) -> Iterator[object]:
        """Run `run` over slices of at most max_batch clips, halving max_batch when the server says too large."""
        start = 0
        while start < len(frames):
            size = self.max_batch
            try:
                yield run(frames[start : start + size])
            except InvalidInput as err:
                if size == 1 or not rq.batch_too_large(err.details):
                    raise
                self.max_batch = max(1, size // 2)
                log.warning("server rejected a batch of %d clips (%s); using %d", size, err.details, self.max_batch)
                continue
            start += size

    # -- videos -------------------------------------------------------------------------------

    def extract(self, video: str | Path, **options: object) -> ExtractResult:
        """Decode, sample and crop one video, and return its clip and video-level features.

        Options are those of vswin.client.extract.ExtractOptions (sampling, clips,
        crops, frame_interval, ...).
        """
        from vswin.client.extract import ExtractOptions, extract_one

        return extract_one(self, video, ExtractOptions(**options))

    def extract_many(
        self, videos: Iterable[str | Path], **options: object
    ) -> Iterator[tuple[str, ExtractResult | Exception]]:
        """Yield (video, result or exception) per video, decoding the next video while requests are in flight."""
        from vswin.client.extract import ExtractOptions, extract_pipelined

        return extract_pipelined(self, videos, ExtractOptions(**options))

