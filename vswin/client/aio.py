"""AsyncVideoSwinClient: the asyncio (grpc.aio) driver of the client core, for many requests and files in flight."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from vswin import contract
from vswin.client import requests as rq
from vswin.client.core import Call, ClientCore
from vswin.client.errors import InvalidInput
from vswin.client.extract import (
    EXTRACT_ERRORS,
    ExtractOptions,
    ImageResult,
    Result,
    assemble,
    flat_views,
    require_image_model,
)
from vswin.client.image import load_image
from vswin.client.metadata import ModelInfo
from vswin.client.rpc import AsyncRpc

ImageSource = str | Path | np.ndarray


class AsyncVideoSwinClient(ClientCore):
    """The asyncio twin of VideoSwinClient (same arguments and errors); create it inside a running loop.

    `features` sends its requests concurrently; `extract_many` decodes files
    on worker threads while requests are in flight, at most `concurrency`
    requests at a time.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.rpc = AsyncRpc(self.settings)
        self._info_lock = asyncio.Lock()

    async def close(self) -> None:
        await self.rpc.close()

    async def __aenter__(self) -> AsyncVideoSwinClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, call: Call, timeout: float | None = None) -> object:
        return await self.rpc.call(call, self.attempts(call, timeout))

    async def model_info(self, signature: str | None = None, refresh: bool = False, timeout: float | None = None) -> ModelInfo:
        """See VideoSwinClient.model_info; concurrent first calls share one fetch."""
        signature = signature or self.signature
        async with self._info_lock:
            info = None if refresh else self.cached_info(signature)
            if info is None:
                info = self.read_info(await self._call(self.metadata_call(signature), timeout), signature)
                export = self.export_call(info)
                info = self.read_export(info, await self._call(export, timeout) if export else None)
            return info

    async def status(self, timeout: float | None = None) -> list[rq.VersionStatus]:
        return rq.parse_status(await self._call(self.status_call(), timeout))

    async def predict(
        self,
        inputs: dict[str, np.ndarray],
        signature: str | None = None,
        output_filter: list[str] | None = None,
        timeout: float | None = None,
    ) -> dict[str, np.ndarray]:
        return rq.predict_outputs(await self._call(self.predict_call(inputs, signature, output_filter), timeout))

    async def features(
        self, views: np.ndarray, timeout: float | None = None, limiter: asyncio.Semaphore | None = None
    ) -> np.ndarray:
        """uint8 views -> features [B, C] (see VideoSwinClient.features); the requests go out concurrently.

        `limiter` bounds requests in flight when shared between calls.
        """
        info = await self.model_info()
        views = rq.check_views(views, info)
        parts = await self._batched(views, lambda part: self.features_call(part, info), self.read_features,
                                    timeout, limiter)  # fmt: skip
        return np.concatenate(parts, axis=0)

    async def classify(self, views: np.ndarray, timeout: float | None = None) -> rq.Classification:
        """Top-k labels, classes and scores per view from the `classify` signature."""
        info = await self.model_info(contract.CLASSIFY)
        views = rq.check_views(views, info)
        parts = await self._batched(views, lambda part: self.classify_call(part, info), rq.predict_outputs, timeout)
        return rq.parse_classification({key: np.concatenate([p[key] for p in parts]) for key in parts[0]})

    async def _batched(self, views: np.ndarray, call_for: Callable[[np.ndarray], Call], read: Callable,
                       timeout: float | None, limiter: asyncio.Semaphore | None = None) -> list:  # fmt: skip
        """`read` of each request's answer; the batch plan's requests all in flight (at most `limiter` allows)."""
        plan = self.plan(len(views))
        limiter = limiter or asyncio.Semaphore(len(views))

        async def send(part: slice) -> None:
            try:
                async with limiter:
                    response = await self._call(call_for(views[part]), timeout)
                plan.done(part, read(response))
            except InvalidInput as err:
                self.refused(plan, part, err)

        while plan.pending:
            await asyncio.gather(*(send(part) for part in plan.take()))
        return plan.results()

    # -- files ----------------------------------------------------------------------------------------------

    async def extract(self, video: str | Path, **options: object) -> Result:
        """Decode (on a worker thread), sample, crop and extract one video; see VideoSwinClient.extract."""
        info = await self.model_info()
        return await self._extract_file(video, ExtractOptions(**options).resolve(info), info, None, None)

    async def extract_image(self, image: ImageSource) -> ImageResult:
        """See VideoSwinClient.extract_image."""
        return (await self.extract_images([image]))[0]

    async def extract_images(self, images: Sequence[ImageSource]) -> list[ImageResult]:
        """See VideoSwinClient.extract_images; images decode on a worker thread."""
        info = await self.model_info()
        require_image_model(info)
        loop = asyncio.get_running_loop()
        views = await loop.run_in_executor(None, lambda: [load_image(image, info.preprocessing) for image in images])
        features = await self.features(np.stack([v.view for v in views])) if views else []
        return [assemble([(view, f[None])], info, ExtractOptions()) for view, f in zip(views, features)]

    async def _extract_file(
        self,
        source: str | Path,
        options: ExtractOptions,
        info: ModelInfo,
        pool: ThreadPoolExecutor | None,
        limiter: asyncio.Semaphore | None,
    ) -> Result:
        """One file, part by part: the next part decodes on `pool` while this one is on the server."""
        loop = asyncio.get_running_loop()
        groups = options.batches(source, info, self.max_batch)
        parts = []
        pending = loop.run_in_executor(pool, next, groups, None)
        try:
            while (part := await pending) is not None:
                pending = loop.run_in_executor(pool, next, groups, None)
                parts.append((part, await self.features(flat_views(part, info.view_shape), limiter=limiter)))
        finally:
            if not pending.done():
                await asyncio.wait([pending])  # the generator may only be closed once no thread runs it
            if not pending.cancelled():
                pending.exception()  # retrieved: a decode error after a failed request is not news
            groups.close()
        return assemble(parts, info, options)

    async def extract_many(
        self,
        sources: Iterable[str | Path],
        concurrency: int = 4,
        decode_workers: int | None = None,
        **options: object,
    ) -> AsyncIterator[tuple[str, Result | Exception]]:
        """Yield (file, result or exception) as videos and images finish.

        Files decode on `decode_workers` threads (default: CPU count) while at
        most `concurrency` Predict requests are in flight; at most
        concurrency + decode_workers decoded files are held in memory.
        """
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        info = await self.model_info()
        resolved = ExtractOptions(**options).resolve(info)
        workers = decode_workers or os.cpu_count() or 1
        requests = asyncio.Semaphore(concurrency)
        slots = asyncio.Semaphore(concurrency + workers)

        async def one(source: str | Path) -> tuple[str, Result | Exception]:
            try:
                return str(source), await self._extract_file(source, resolved, info, pool, requests)
            except EXTRACT_ERRORS as err:
                return str(source), err
            finally:
                slots.release()

        pending: set[asyncio.Task] = set()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vswin-decode") as pool:
            try:
                for source in sources:
                    await slots.acquire()
                    pending.add(asyncio.create_task(one(source)))
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
