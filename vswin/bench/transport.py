"""How the load generator reaches a model: `send(batch) -> Timings`, over gRPC, in-process, or faked for tests.

Every transport times its own stages so the report can split client time
into serialize (numpy -> request bytes), round trip (bytes out -> bytes
back) and deserialize (response -> numpy). A failed request raises
RequestFailed carrying the gRPC status name, so errors are counted by code.
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from vswin import contract


@dataclass(frozen=True)
class Timings:
    """Seconds spent in each stage of one request, and the request's size on the wire."""

    serialize_s: float
    round_trip_s: float
    deserialize_s: float
    request_bytes: int


@dataclass(frozen=True)
class InputSpec:
    """The called signature's input: tensor name, numpy dtype name and clip geometry (T, H, W)."""

    name: str
    dtype: str
    clip_shape: tuple[int, int, int]


class RequestFailed(Exception):
    """A request that got no answer: `code` is the gRPC status name ('UNAVAILABLE', ...)."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code


class Transport(Protocol):
    """A model endpoint the load generator can call from many threads at once."""

    input: InputSpec

    def send(self, batch: np.ndarray) -> Timings:
        """Run one request with `batch` [B, T, H, W, 3]; raise RequestFailed on failure."""
        ...

    def metadata(self) -> dict[str, object]:
        """What is known about the model and the endpoint, for the result file."""
        ...

    def close(self) -> None: ...


def read_export_metadata(export_dir: str | Path | None) -> dict[str, object] | None:
    """The export's assets.extra/vswin.json (architecture, geometry, precision, ...), or None if absent."""
    if export_dir is None:
        return None
    path = Path(export_dir) / contract.ASSETS_EXTRA / contract.METADATA_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())



def missing_signature(export_dir: str | Path, name: str, available) -> ValueError:
    """The error for a signature `name` that the export lacks, naming the ones it has (`available`)."""
    return ValueError(f"{export_dir} has no signature {name!r} (has {sorted(available)})")

class GrpcTransport:
    """PredictionService/Predict on a TF Serving-compatible server: the bench's driver of the client core.

    The request is built by the client core and the channel's Predict method
    sends and returns raw bytes, so serialization, the round trip and
    deserialization are timed apart; no retries, so every failure is counted.
    Channel keyword arguments (tls, root_certificates, client_certificate,
    client_key, ...) go to ChannelSettings, as for VideoSwinClient.
    """

    def __init__(
        self,
        target: str,
        model: str,
        version: int | None = None,
        label: str | None = None,
        signature: str = contract.SERVING_DEFAULT,
        timeout: float = 60.0,
        export_dir: str | Path | None = None,
        **channel: object,
    ) -> None:
        import grpc

        from vswin.client import VideoSwinClient, protos

        self._grpc = grpc
        self._protos = protos
        self.target = target
        self.signature = signature
        self.timeout = timeout
        self._client = VideoSwinClient(target, model, version=version, label=label, signature=signature,
                                       timeout=timeout, **channel)  # fmt: skip
        try:
            self.info = self._client.model_info()
            spec = self.info.input
            dtype = {"DT_UINT8": "uint8", "DT_FLOAT": "float32"}.get(spec.dtype)
            if dtype is None:
                raise ValueError(f"signature {signature!r} input {spec.describe()}: only uint8 frames or float32 clips")
            self.input = InputSpec(spec.name, dtype, self.info.clip_shape)
        except BaseException:
            self._client.close()
            raise
        export = self.info.export
        self._export = read_export_metadata(export_dir) or (dict(export) if export is not None else None)
        # Only `features` where the signature has it (less to deserialize); all outputs otherwise.
        outputs = self.info.signatures[signature].outputs
        self._output_filter = [contract.FEATURES] if contract.FEATURES in outputs else None
        self._predict = self._client.rpc.method(protos.PREDICT[0])

    def send(self, batch: np.ndarray) -> Timings:
        from vswin.client.requests import predict_outputs

        t0 = time.perf_counter()
        payload = self._client.predict_call({self.input.name: batch}, output_filter=self._output_filter).request
        t1 = time.perf_counter()
        try:
            answer = self._predict(payload, timeout=self.timeout)
        except self._grpc.RpcError as err:
            raise RequestFailed(err.code().name, err.details() or "") from None
        t2 = time.perf_counter()
        predict_outputs(self._protos.PredictResponse.FromString(answer))
        t3 = time.perf_counter()
        return Timings(t1 - t0, t2 - t1, t3 - t2, len(payload))

    def metadata(self) -> dict[str, object]:
        return {
            "transport": "grpc",
            "target": self.target,
            "model": self.info.name,
            "version": self.info.version,
            "label": self._client.model.label,
            "signature": self.signature,
            "signatures": sorted(self.info.signatures),
            "input": {"name": self.input.name, "dtype": self.input.dtype, "clip_shape": list(self.input.clip_shape)},
            "feature_dim": self.info.feature_dim,
            "export": self._export,
        }

    def close(self) -> None:
        self._client.close()


_LOADED: weakref.WeakValueDictionary[str, object] = weakref.WeakValueDictionary()


def _load_savedmodel(export_dir: str) -> object:
    """The SavedModel at `export_dir`, loaded once while any transport holds it: transports of several of
    its signatures (comparisons (c) and (d) of benchmarks/scenarios) share one copy of its variables."""
    import tensorflow as tf

    key = str(Path(export_dir).resolve())
    loaded = _LOADED.get(key)
    if loaded is None:
        loaded = _LOADED[key] = tf.saved_model.load(key)
    return loaded


class SavedModelTransport:
    """Calls a signature of a SavedModel in this process: the baseline that served figures are compared to."""

    def __init__(self, export_dir: str | Path, signature: str = contract.SERVING_DEFAULT) -> None:
        import tensorflow as tf

        self._tf = tf
        self.export_dir = str(export_dir)
        self.signature = signature
        loaded = _load_savedmodel(self.export_dir)
        if signature not in loaded.signatures:
            raise missing_signature(self.export_dir, signature, loaded.signatures)
        self._loaded = loaded  # keeps the functions' variables alive
        self._fn = loaded.signatures[signature]
        (name, spec), = self._fn.structured_input_signature[1].items()
        shape = spec.shape.as_list()
        if len(shape) != 5 or None in shape[1:4]:
            raise ValueError(f"signature {signature!r} input {name} {shape} has no static clip shape [B, T, H, W, 3]")
        self.input = InputSpec(name, spec.dtype.name, (shape[1], shape[2], shape[3]))
        self._export = read_export_metadata(export_dir)

    def send(self, batch: np.ndarray) -> Timings:
        t0 = time.perf_counter()
        tensor = self._tf.constant(batch)
        t1 = time.perf_counter()
        outputs = self._fn(**{self.input.name: tensor})
        t2 = time.perf_counter()
        for value in outputs.values():  # copy to host memory, as a server's response encoding would
            value.numpy()
        t3 = time.perf_counter()
        return Timings(t1 - t0, t2 - t1, t3 - t2, batch.nbytes)

    def metadata(self) -> dict[str, object]:
        return {
            "transport": "in-process",
            "export_dir": self.export_dir,
            "signature": self.signature,
            "signatures": sorted(self._loaded.signatures),
            "input": {"name": self.input.name, "dtype": self.input.dtype, "clip_shape": list(self.input.clip_shape)},
            "export": self._export,
        }

    def close(self) -> None:
        self._fn = None


@dataclass
class FakeTransport:
    """A stand-in endpoint for tests: `latency(i)` seconds per request i, `error(i)` a status name or None.

    It waits with `sleep` (a virtual clock's `advance` makes latencies exact on a busy machine) and
    reports, and keeps in `durations`, the time each request really took by `now`.
    """

    latency: Callable[[int], float]
    error: Callable[[int], str | None] = lambda i: None
    input: InputSpec = InputSpec(contract.FRAMES, "uint8", (2, 8, 8))
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], float] = time.monotonic
    calls: int = 0
    durations: list[float] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def send(self, batch: np.ndarray) -> Timings:
        with self._lock:
            i = self.calls
            self.calls += 1
        start = self.now()
        self.sleep(self.latency(i))
        took = self.now() - start
        with self._lock:
            self.durations.append(took)
        code = self.error(i)
        if code is not None:
            raise RequestFailed(code, f"fake failure of request {i}")
        return Timings(0.0, took, 0.0, batch.nbytes)

    def metadata(self) -> dict[str, object]:
        return {"transport": "fake"}

    def close(self) -> None:
        pass
