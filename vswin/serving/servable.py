"""One loaded model version: a TF1 Session over the SavedModel (tag `serve`), run by SignatureDef.

This is how TF Serving runs a signature: feed and fetch by the tensor names
in the SignatureDef, not through the TF2 function objects. Requests are
checked against the SignatureDef first, because Session.run silently casts
a wrongly typed feed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.python.saved_model import loader_impl
from tensorflow_serving.apis import prediction_log_pb2

from vswin import contract
from vswin.contract import MAX_WARMUP_RECORDS, SERVE_TAG
from vswin.serving.errors import ServingError, failed_precondition, invalid_argument, status_code_from_number
from vswin.serving.tensors import DeclaredTensor, to_ndarray
from vswin.serving.xla import explain_xla_disabled

log = logging.getLogger(__name__)

DEFAULT_SIGNATURE = contract.SERVING_DEFAULT
WARMUP_FILE = Path(contract.ASSETS_EXTRA) / contract.WARMUP_FILE
METADATA_FILE = Path(contract.ASSETS_EXTRA) / contract.METADATA_FILE
INTERNAL_SIGNATURE_PREFIX = "__"  # __saved_model_init_op and friends: run by the loader, never by a request


def tensor_spec(info: meta_graph_pb2.TensorInfo) -> str:
    """'uint8 [-1,16,64,64,3]' for a TensorInfo: dtype and shape, -1 for any size."""
    dtype = tf.as_dtype(info.dtype).name
    if info.tensor_shape.unknown_rank:
        return f"{dtype} [any rank]"
    return f"{dtype} [{','.join(str(dim.size) for dim in info.tensor_shape.dim)}]"


def signature_spec(signature: meta_graph_pb2.SignatureDef) -> str:
    """All inputs of a signature, e.g. "{frames: uint8 [-1,16,64,64,3]}"."""
    return "{" + ", ".join(f"{key}: {tensor_spec(info)}" for key, info in sorted(signature.inputs.items())) + "}"


class Servable:
    """A SavedModel version loaded for serving; `run` is thread-safe, `unload` waits for requests in flight."""

    def __init__(self, name: str, version: int, path: str | Path) -> None:
        self.name = name
        self.version = version
        self.path = Path(path)
        self._graph = tf.Graph()
        self._session = tf.compat.v1.Session(graph=self._graph)
        with self._graph.as_default():
            meta_graph = loader_impl.SavedModelLoader(str(self.path)).load(self._session, [SERVE_TAG])
        self.signature_defs: dict[str, meta_graph_pb2.SignatureDef] = dict(meta_graph.signature_def)
        self.metadata = _read_metadata(self.path / METADATA_FILE)
        self._in_flight = 0
        self._idle = threading.Condition()
        self._cancelled = False

    def signature(self, name: str) -> meta_graph_pb2.SignatureDef:
        """The SignatureDef `name` ('' means serving_default); FAILED_PRECONDITION as TF Serving if absent.

        Internal signatures (`__saved_model_init_op`) are INVALID_ARGUMENT: the loader runs them, a request may not.
        """
        name = name or DEFAULT_SIGNATURE
        if name.startswith(INTERNAL_SIGNATURE_PREFIX):
            callable_names = sorted(key for key in self.signature_defs if not key.startswith(INTERNAL_SIGNATURE_PREFIX))
            raise invalid_argument(f'signature "{name}" is internal to the SavedModel and cannot be called; '
                                   f"signatures: {callable_names}")  # fmt: skip
        if name not in self.signature_defs:
            raise failed_precondition(f'Serving signature key "{name}" not found.')
        return self.signature_defs[name]

    def check_request(
        self,
        signature_name: str,
        inputs: Mapping[str, np.ndarray | DeclaredTensor],
        output_filter: Sequence[str] = (),
    ) -> None:
        """INVALID_ARGUMENT naming the expected spec for wrong input names, dtypes, ranks or shapes.

        `inputs` are arrays, or the dtype and shape a request declares before it is decoded.
        """
        signature = self.signature(signature_name)
        expected = signature_spec(signature)
        sent, wanted = set(inputs), set(signature.inputs)
        if sent != wanted:
            raise invalid_argument(
                f"input size does not match signature: {len(sent)}!={len(wanted)}; sent extra: "
                f"{sorted(sent - wanted)}, missing but required: {sorted(wanted - sent)}; expected inputs {expected}"
            )
        for key, array in inputs.items():
            _check_tensor(key, array, signature.inputs[key], expected)
        if len(set(output_filter)) != len(output_filter):
            raise invalid_argument(f"duplicate output tensor alias in output_filter {list(output_filter)}")
        for alias in output_filter:
            if alias not in signature.outputs:
                raise invalid_argument(
                    f"output tensor alias not found in signature: {alias}; outputs expected to be in the set "
                    f"{sorted(signature.outputs)}"
                )

    def run(
        self,
        signature_name: str,
        inputs: Mapping[str, np.ndarray],
        output_filter: Sequence[str] = (),
        timeout: float | None = None,
    ) -> dict[str, np.ndarray]:
        """Feed `inputs` and fetch the signature's outputs (only `output_filter` if given) by tensor name.

        TensorFlow errors become ServingError with the same status code (the
        codes share numbering). `timeout` seconds is the Session's run timeout:
        when it passes, the step is cancelled (between ops) and the request gets
        DEADLINE_EXCEEDED; `cancel()` stops every running step the same way.
        """
        signature = self.signature(signature_name)
        aliases = list(output_filter) or sorted(signature.outputs)
        feeds = {signature.inputs[key].name: value for key, value in inputs.items()}
        fetches = [signature.outputs[alias].name for alias in aliases]
        options = None
        if timeout is not None:
            options = tf.compat.v1.RunOptions(timeout_in_ms=max(1, int(timeout * 1000)))
        try:
            values = self._session.run(fetches, feed_dict=feeds, options=options)
        except tf.errors.DeadlineExceededError as err:
            raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED,
                               "Deadline exceeded while running; the computation was stopped") from err  # fmt: skip
        except tf.errors.OpError as err:
            if self._cancelled:
                raise ServingError(grpc.StatusCode.CANCELLED, "the server is shutting down; the computation "
                                   "was stopped") from err  # fmt: skip
            raise ServingError(status_code_from_number(err.error_code), explain_xla_disabled(err.message)) from err
        except RuntimeError as err:  # Session.run on a session closed by cancel()
            if self._cancelled:
                raise ServingError(grpc.StatusCode.CANCELLED, "the server is shutting down") from err
            raise
        return dict(zip(aliases, values))

    def hold(self) -> None:
        """Count one request in flight; `unload` waits until every hold is released."""
        with self._idle:
            self._in_flight += 1

    def release(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    @property
    def in_flight(self) -> int:
        with self._idle:
            return self._in_flight

    def unload(self) -> None:
        """Wait for requests in flight on this version to finish (unless cancelled), then free the session."""
        with self._idle:
            if not self._cancelled:
                self._idle.wait_for(lambda: self._in_flight == 0)
        self._session.close()

    def cancel(self) -> None:
        """Stop every running step of this version now (they fail with CANCELLED) and refuse new ones.

        Closing a DirectSession cancels its steps between ops; a step inside one
        long op (one XLA cluster) stops when that op returns.
        """
        self._cancelled = True
        self._session.close()

    def warmup(self, iterations: int = 1) -> int:
        """Replay assets.extra/tf_serving_warmup_requests (PredictLog records); returns records replayed.

        As in TF Serving, a failing record or more than 1000 records fails the load.
        Each record is logged with its signature, batch size and time, since the
        first call of each XLA batch size compiles (minutes for a large model on CPU).
        """
        path = self.path / WARMUP_FILE
        if not path.exists():
            return 0
        records = [bytes(record.numpy()) for record in tf.data.TFRecordDataset(str(path))]
        if len(records) > MAX_WARMUP_RECORDS:
            raise ValueError(f"{path}: {len(records)} warmup records; at most {MAX_WARMUP_RECORDS} are allowed")
        started = time.monotonic()
        log.info("model %s version %d: replaying %d warmup records", self.name, self.version, len(records))
        for index, record in enumerate(records):
            record_started = time.monotonic()
            entry = prediction_log_pb2.PredictionLog.FromString(record)
            if entry.WhichOneof("log_type") != "predict_log":
                raise ValueError(f"{path} record {index}: {entry.WhichOneof('log_type')} is not supported "
                                 "(vswin serve replays predict_log records only)")  # fmt: skip
            request = entry.predict_log.request
            inputs = {key: to_ndarray(key, proto) for key, proto in request.inputs.items()}
            try:
                self.check_request(request.model_spec.signature_name, inputs, list(request.output_filter))
                for _ in range(max(1, iterations)):
                    self.run(request.model_spec.signature_name, inputs, list(request.output_filter))
            except ServingError as err:
                raise ValueError(f"{path} record {index}: {err}") from err
            now = time.monotonic()
            log.info("model %s version %d: warmup %d/%d: %s batch %s in %.1f s (%.1f s so far)", self.name,
                     self.version, index + 1, len(records), request.model_spec.signature_name or DEFAULT_SIGNATURE,
                     _batch_size(inputs), now - record_started, now - started)  # fmt: skip
        log.info("model %s version %d: replayed %d warmup records in %.1f s", self.name, self.version, len(records),
                 time.monotonic() - started)  # fmt: skip
        return len(records)


def _batch_size(inputs: Mapping[str, np.ndarray]) -> str:
    sizes = sorted({array.shape[0] for array in inputs.values() if array.ndim})
    return ",".join(map(str, sizes)) or "-"


def _read_metadata(path: Path) -> dict:
    """The export's vswin.json, or {} for SavedModels without one (or with one that does not parse)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _check_tensor(key: str, array: np.ndarray | DeclaredTensor, info: meta_graph_pb2.TensorInfo, expected: str) -> None:
    want_dtype = tf.as_dtype(info.dtype)
    got = f"{array.dtype.name if array.dtype.kind not in 'OSU' else 'string'} [{','.join(map(str, array.shape))}]"
    wrong = f"input '{key}' expects {tensor_spec(info)}, got {got}; expected inputs {expected}"
    got_dtype = tf.string if array.dtype.kind in "OSU" else tf.as_dtype(array.dtype)
    if got_dtype != want_dtype:
        raise invalid_argument(wrong)
    if info.tensor_shape.unknown_rank:
        return
    dims = [dim.size for dim in info.tensor_shape.dim]
    if len(dims) != len(array.shape) or any(want not in (-1, got) for want, got in zip(dims, array.shape)):
        raise invalid_argument(wrong)
