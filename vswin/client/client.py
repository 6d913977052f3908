"""VideoSwinClient: the synchronous driver of the client core, for video and image Swin models on TF Serving."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import numpy as np

from vswin import contract
from vswin.client import requests as rq
from vswin.client.core import Call, ClientCore
from vswin.client.errors import DeadlineExceeded, InvalidInput, ModelNotFound, ServerUnavailable
from vswin.client.metadata import ModelInfo
from vswin.client.rpc import Rpc

if TYPE_CHECKING:
    from vswin.client.extract import ExtractResult, ImageResult, Result

ImageSource = str | Path | np.ndarray


class VideoSwinClient(ClientCore):
    """Calls one model on a TF Serving (or `vswin serve`) endpoint over gRPC.

    `timeout` is each call's deadline in seconds, retries included; retries
    (see RetryPolicy) happen on UNAVAILABLE and RESOURCE_EXHAUSTED only.
    `max_batch` caps views per Predict; if the server's batcher refuses a
    request as too large, the client cuts it to the server's limit and
    remembers. Channel keyword arguments (tls, root_certificates,
    client_certificate, client_key, server_name, max_message_bytes,
    keepalive_time_ms, lb_policy, extra_options) go to ChannelSettings.
    Thread-safe; use as a context manager or call close().
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        """Arguments of ClientCore: target, model, version, label, signature, timeout, retry, max_batch, channel."""
        super().__init__(*args, **kwargs)
        self.rpc = Rpc(self.settings)

    def close(self) -> None:
        self.rpc.close()

    def __enter__(self) -> VideoSwinClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VideoSwinClient({self.target!r}, {self.model.describe()}, signature={self.signature!r})"

    def _call(self, call: Call, timeout: float | None = None) -> object:
        return self.rpc.call(call, self.attempts(call, timeout))

    # -- RPCs ---------------------------------------------------------------------------------------------

    def model_info(self, signature: str | None = None, refresh: bool = False, timeout: float | None = None) -> ModelInfo:
        """Signatures, geometry, feature dim, version (GetModelMetadata) and the export's preprocessing
        (its `metadata` signature, read once per version); cached."""
        signature = signature or self.signature
        info = None if refresh else self.cached_info(signature)
        if info is None:
            info = self.read_info(self._call(self.metadata_call(signature), timeout), signature)
            export = self.export_call(info)
            info = self.read_export(info, self._call(export, timeout) if export else None)
        return info

    def status(self, timeout: float | None = None) -> list[rq.VersionStatus]:
        """The model's versions and their states (GetModelStatus on ModelService)."""
        return rq.parse_status(self._call(self.status_call(), timeout))

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
        return rq.predict_outputs(self._call(self.predict_call(inputs, signature, output_filter), timeout))

    def features(self, views: np.ndarray, timeout: float | None = None) -> np.ndarray:
        """uint8 views of the model's geometry -> float32 features [B, C].

        Views are clips [B, T, H, W, 3] for a video model, images [B, H, W, 3]
        for an image model (RGB). Sent in requests of at most `max_batch`;
        `timeout` applies to each request.
        """
        info = self.model_info()
        views = rq.check_views(views, info)
        return np.concatenate(self._batched(views, lambda part: self.features_call(part, info), self.read_features,
                                            timeout), axis=0)  # fmt: skip

    def classify(self, views: np.ndarray, timeout: float | None = None) -> rq.Classification:
        """Top-k labels, classes and scores per view from the `classify` signature (exports with a head)."""
        info = self.model_info(contract.CLASSIFY)
        views = rq.check_views(views, info)
        parts = self._batched(views, lambda part: self.classify_call(part, info), rq.predict_outputs, timeout)
        return rq.parse_classification({key: np.concatenate([p[key] for p in parts]) for key in parts[0]})

    def _batched(self, views: np.ndarray, call_for: Callable[[np.ndarray], Call], read: Callable, timeout: float | None) -> list:
        """`read` of each request's answer, the requests one at a time as the core's batch plan cuts them."""
        plan = self.plan(len(views))
        while plan.pending:
            (part,) = plan.take(1)
            try:
                plan.done(part, read(self._call(call_for(views[part]), timeout)))
            except InvalidInput as err:
                self.refused(plan, part, err)
        return plan.results()

    # -- files ----------------------------------------------------------------------------------------------

    def extract(self, video: str | Path, **options: object) -> ExtractResult:
        """Decode, sample and crop one video, and return its clip and video-level features.

        Options are those of vswin.client.extract.ExtractOptions (sampling, clips,
        crops, frame_interval, ...); unset ones are the model's preprocessing. For
        an image model: `frames_per_video` frames, each as an image.
        """
        from vswin.client.extract import ExtractOptions, extract_one

        return extract_one(self, video, ExtractOptions(**options))

    def extract_image(self, image: ImageSource) -> ImageResult:
        """One image (a jpg/png/webp file, or uint8 RGB [H, W, 3] of any size) -> its features, with the
        model's evaluation preprocessing (resize, center crop)."""
        return self.extract_images([image])[0]

    def extract_images(self, images: Sequence[ImageSource]) -> list[ImageResult]:
        """The batch form of extract_image: all images preprocessed, then sent `max_batch` per request.
        An unreadable image raises ImageError (extract_many reports failures per file instead)."""
        from vswin.client.extract import ExtractOptions, assemble, require_image_model
        from vswin.client.image import load_image

        info = self.model_info()
        require_image_model(info)
        views = [load_image(image, info.preprocessing) for image in images]
        features = self.features(np.stack([v.view for v in views])) if views else []
        return [assemble([(view, f[None])], info, ExtractOptions()) for view, f in zip(views, features)]

    def extract_many(self, sources: Iterable[str | Path], **options: object) -> Iterator[tuple[str, Result | Exception]]:
        """Yield (file, result or exception) per video or image, decoding the next file while requests are in
        flight."""
        from vswin.client.extract import ExtractOptions, extract_pipelined

        return extract_pipelined(self, sources, ExtractOptions(**options))

