"""AsyncVideoSwinClient: the asyncio (grpc.aio) client, for many requests and videos in flight."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import grpc.aio
import numpy as np

from vswin import contract
from vswin.client import protos
from vswin.client import requests as rq
from vswin.client.base import ClientBase
from vswin.client.errors import RETRYABLE, DeadlineExceeded, InvalidInput, from_rpc_error
from vswin.client.extract import EXTRACT_ERRORS, ExtractOptions, ExtractResult, assemble, flat_views
from vswin.client.metadata import ModelInfo, parse_metadata

log = logging.getLogger(__name__)


class AsyncVideoSwinClient(ClientBase):
    """The asyncio twin of VideoSwinClient (same arguments and errors); create it inside a running loop.

    `features` sends its batches concurrently; `extract_many` decodes videos on
    worker threads while requests are in flight, at most `concurrency` requests
    at a time.
    """

    grpc_module = grpc.aio
    lock_type = asyncio.Lock

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncVideoSwinClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, method: tuple, request: object, timeout: float | None) -> object:
        """One unary call; the deadline covers every attempt; retries only UNAVAILABLE/RESOURCE_EXHAUSTED."""
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
                return await self._methods[path](request, timeout=remaining)
            except grpc.aio.AioRpcError as err:
                error = from_rpc_error(err, path, self.target)
                attempt += 1
                if error.code not in RETRYABLE or attempt >= self.retry.max_attempts:
                    raise error from None
                delay = self.retry.delay(attempt - 1)
                if time.monotonic() + delay >= deadline:
                    raise error from None
                log.warning("%s; retry %d/%d in %.2fs", error, attempt, self.retry.max_attempts - 1, delay)
                await asyncio.sleep(delay)

    async def model_info(self, signature: str | None = None, refresh: bool = False, timeout: float | None = None) -> ModelInfo:
        """Signatures, clip geometry, feature dim and version from GetModelMetadata; cached."""
        signature = signature or self.signature
        async with self._lock:
            if refresh or signature not in self._info:
                response = await self._call(protos.GET_MODEL_METADATA, rq.metadata_request(self.model, signature), timeout)
                self._info[signature] = parse_metadata(response, signature)
            return self._info[signature]

    async def status(self, timeout: float | None = None) -> list[rq.VersionStatus]:
        return rq.parse_status(await self._call(protos.GET_MODEL_STATUS, rq.status_request(self.model), timeout))

    async def predict(
        self,
        inputs: dict[str, np.ndarray],
        signature: str | None = None,
        output_filter: list[str] | None = None,
        timeout: float | None = None,
    ) -> dict[str, np.ndarray]:
        request = rq.encode_predict_request(self.model, signature or self.signature, inputs, output_filter)
        return rq.predict_outputs(await self._call(protos.PREDICT, request, timeout))

    async def features(
        self, frames: np.ndarray, timeout: float | None = None, limiter: asyncio.Semaphore | None = None
    ) -> np.ndarray:
        """uint8 clips [B, T, H, W, 3] -> features [B, C]; batches of max_batch go out concurrently.

        `limiter` bounds requests in flight when shared between calls.
        """
        info = await self.model_info()
        frames = rq.check_frames(frames, info)
        limiter = limiter or asyncio.Semaphore(len(frames))
        parts = await asyncio.gather(
            *(
                self._features_slice(frames[start : start + self.max_batch], info, timeout, limiter)
                for start in range(0, len(frames), self.max_batch)
            )
        )
        return np.concatenate(parts, axis=0)

    async def _features_slice(
        self, batch: np.ndarray, info: ModelInfo, timeout: float | None, limiter: asyncio.Semaphore
    ) -> np.ndarray:
        """One request, split in halves if the server's batcher says it is too large."""
        try:
            async with limiter:
                outputs = await self.predict({info.input.name: batch}, output_filter=[contract.FEATURES], timeout=timeout)
        except InvalidInput as err:
            if len(batch) == 1 or not rq.batch_too_large(err.details):
                raise
            self.max_batch = min(self.max_batch, max(1, len(batch) // 2))
            log.warning("server rejected a batch of %d clips (%s); using %d", len(batch), err.details, self.max_batch)
            half = len(batch) // 2
            first, second = await asyncio.gather(
                self._features_slice(batch[:half], info, timeout, limiter),
                self._features_slice(batch[half:], info, timeout, limiter),
            )
            return np.concatenate([first, second], axis=0)
        if "features" not in outputs:
            raise InvalidInput(f"signature {self.signature!r} returned {sorted(outputs)}, not 'features'")
        return outputs["features"]

    async def classify(self, frames: np.ndarray, timeout: float | None = None) -> rq.Classification:
        """Top-k labels, classes and scores per clip from the `classify` signature."""
        info = await self.model_info(contract.CLASSIFY)
        frames = rq.check_frames(frames, info)
        parts = await asyncio.gather(
            *(
                self.predict({info.input.name: frames[s : s + self.max_batch]}, signature=contract.CLASSIFY, timeout=timeout)
                for s in range(0, len(frames), self.max_batch)
            )
        )
        return rq.parse_classification({k: np.concatenate([p[k] for p in parts], axis=0) for k in parts[0]})

    async def extract(self, video: str | Path, **options: object) -> ExtractResult:
        """Decode (on a worker thread), sample, crop and extract one video; see VideoSwinClient.extract."""
        opts = ExtractOptions(**options)
        info = await self.model_info()
        return await self._extract_video(video, opts, info, None, None)

    async def _extract_video(
        self,
        video: str | Path,
        opts: ExtractOptions,
        info: ModelInfo,
        pool: ThreadPoolExecutor | None,
        limiter: asyncio.Semaphore | None,
    ) -> ExtractResult:
        """One video, batch by batch: the next batch decodes on `pool` while this one is on the server."""
        loop = asyncio.get_running_loop()
        batches = opts.batches(video, info, self.max_batch)
        parts = []
        pending = loop.run_in_executor(pool, next, batches, None)
        try:
            while (batch := await pending) is not None:
                pending = loop.run_in_executor(pool, next, batches, None)
                parts.append((batch, await self.features(flat_views(batch), limiter=limiter)))
        finally:
            if not pending.done():
                await asyncio.wait([pending])  # the generator may only be closed once no thread runs it
            if not pending.cancelled():
                pending.exception()  # retrieved: a decode error after a failed request is not news
            batches.close()
        return assemble(parts, info, opts)

    async def extract_many(
        self,
        videos: Iterable[str | Path],
        concurrency: int = 4,
        decode_workers: int | None = None,
        **options: object,
    ) -> AsyncIterator[tuple[str, ExtractResult | Exception]]:
        """Yield (video, result or exception) as videos finish.

        Videos decode on `decode_workers` threads (default: CPU count) while at
        most `concurrency` Predict requests are in flight; at most
        concurrency + decode_workers decoded videos are held in memory.
        """
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        opts = ExtractOptions(**options)
        info = await self.model_info()
        workers = decode_workers or os.cpu_count() or 1
        requests = asyncio.Semaphore(concurrency)
        slots = asyncio.Semaphore(concurrency + workers)

        async def one(video: str | Path) -> tuple[str, ExtractResult | Exception]:
            try:
                return str(video), await self._extract_video(video, opts, info, pool, requests)
            except EXTRACT_ERRORS as err:
                return str(video), err
            finally:
                slots.release()

        pending: set[asyncio.Task] = set()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vswin-decode") as pool:
            try:
                for video in videos:
                    await slots.acquire()
                    pending.add(asyncio.create_task(one(video)))
                    for task in [t for t in pending if t.done()]:
                        pending.discard(task)
                        yield task.result()
                while pending:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        yield task.result()
            finally:
                for task in pending:
                    task.cancel()
