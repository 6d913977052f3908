"""One loaded model version: a TF1 Session over the SavedModel (tag `serve`), run by SignatureDef.

This is how TF Serving runs a signature: feed and fetch by the tensor names
in the SignatureDef, not through the TF2 function objects. Requests are
checked against the SignatureDef first, because Session.run silently casts
a wrongly typed feed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.python.saved_model import loader_impl
from tensorflow_serving.apis import prediction_log_pb2

from vswin import contract
from vswin.contract import MAX_WARMUP_RECORDS, SERVE_TAG
from vswin.serving.errors import ServingError, failed_precondition, invalid_argument, status_code_from_number
from vswin.serving.tensors import to_ndarray

log = logging.getLogger(__name__)

DEFAULT_SIGNATURE = contract.SERVING_DEFAULT
WARMUP_FILE = Path(contract.ASSETS_EXTRA) / contract.WARMUP_FILE


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
        self._in_flight = 0
        self._idle = threading.Condition()

    def signature(self, name: str) -> meta_graph_pb2.SignatureDef:
        """The SignatureDef `name` ('' means serving_default); FAILED_PRECONDITION as TF Serving if absent."""
        name = name or DEFAULT_SIGNATURE
        if name not in self.signature_defs:
            raise failed_precondition(f'Serving signature key "{name}" not found.')
        return self.signature_defs[name]

    def check_request(
        self, signature_name: str, inputs: Mapping[str, np.ndarray], output_filter: Sequence[str] = ()
    ) -> None:
        """INVALID_ARGUMENT naming the expected spec for wrong input names, dtypes, ranks or shapes."""
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
        codes share numbering); `timeout` seconds maps to DEADLINE_EXCEEDED.
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
        except tf.errors.OpError as err:
            raise ServingError(status_code_from_number(err.error_code), err.message) from err
        return dict(zip(aliases, values))

    def hold(self) -> None:
        """Count one request in flight; `unload` waits until every hold is released."""
        with self._idle:
            self._in_flight += 1

    def release(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def unload(self) -> None:
        """Wait for requests in flight on this version to finish, then free the session."""
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0)
        self._session.close()

    def warmup(self, iterations: int = 1) -> int:
        """Replay assets.extra/tf_serving_warmup_requests (PredictLog records); returns records replayed.

        As in TF Serving, a failing record or more than 1000 records fails the load.
        """
        path = self.path / WARMUP_FILE
        if not path.exists():
            return 0
        records = [bytes(record.numpy()) for record in tf.data.TFRecordDataset(str(path))]
        if len(records) > MAX_WARMUP_RECORDS:
            raise ValueError(f"{path}: {len(records)} warmup records; at most {MAX_WARMUP_RECORDS} are allowed")
        for index, record in enumerate(records):
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
        log.info("model %s version %d: replayed %d warmup records", self.name, self.version, len(records))
        return len(records)


def _check_tensor(key: str, array: np.ndarray, info: meta_graph_pb2.TensorInfo, expected: str) -> None:
    want_dtype = tf.as_dtype(info.dtype)
    got = f"{array.dtype.name if array.dtype.kind not in 'OSU' else 'string'} [{','.join(map(str, array.shape))}]"
    wrong = f"input '{key}' expects {tensor_spec(info)}, got {got}; expected inputs {expected}"
    got_dtype = tf.string if array.dtype.kind in "OSU" else tf.as_dtype(array.dtype)
    if got_dtype != want_dtype:
        raise invalid_argument(wrong)
    if info.tensor_shape.unknown_rank:
        return
    dims = [dim.size for dim in info.tensor_shape.dim]
    if len(dims) != array.ndim or any(want not in (-1, got) for want, got in zip(dims, array.shape)):
        raise invalid_argument(wrong)
