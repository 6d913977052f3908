"""Per-request size limits, checked on the shapes a request declares before any tensor is decoded.

Without batching every request runs as its own Session call, so one request
with many rows holds the memory of all of them at once (a 200 MB uint8
request of 32x224x224 clips through Swin-T grew the server from 1.7 to 15 GB).
`--max_request_batch_size` bounds the rows of one request when batching is
off (with batching the batcher's `max_batch_size` does, as in TF Serving), and
`--max_request_bytes` bounds the decoded size of its inputs either way. gRPC
requests are checked on the shapes their TensorProtos declare, before
decoding; REST requests once their JSON is read (whose size
--grpc_max_message_size bounds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from vswin import contract
from vswin.serving.errors import invalid_argument, resource_exhausted
from vswin.serving.flags import DEFAULT_MAX_REQUEST_BATCH_SIZE, DEFAULT_MAX_REQUEST_BYTES
from vswin.serving.tensors import DeclaredTensor, nbytes


@dataclass(frozen=True)
class RequestLimits:
    """`max_rows`: rows of one request (0: no limit); `max_bytes`: decoded bytes of all its inputs (0: no limit)."""

    max_rows: int = DEFAULT_MAX_REQUEST_BATCH_SIZE
    max_bytes: int = DEFAULT_MAX_REQUEST_BYTES

    def __post_init__(self) -> None:
        if self.max_rows < 0 or self.max_bytes < 0:
            raise ValueError(f"request limits must be >= 0 (0: no limit), got rows {self.max_rows}, bytes {self.max_bytes}")

    def check(self, inputs: Mapping[str, np.ndarray | DeclaredTensor]) -> None:
        """INVALID_ARGUMENT for too many rows, RESOURCE_EXHAUSTED for too many bytes; each names its flag.

        `inputs` are decoded arrays, or (gRPC) the dtypes and shapes requests declare before decoding.
        """
        total = 0
        for name, tensor in inputs.items():
            shape = tuple(tensor.shape)
            rows = shape[0] if shape else 1
            if self.max_rows and rows > self.max_rows:
                raise invalid_argument(  # the batcher's words, so clients learn the limit from either
                    f"{contract.batch_too_large(rows, self.max_rows)} (--max_request_batch_size of a server "
                    f"without batching; input '{name}'): send at most {self.max_rows} rows per request"
                )
            total += nbytes(tensor)
        if self.max_bytes and total > self.max_bytes:
            raise resource_exhausted(
                f"the request's inputs decode to {total} bytes, more than --max_request_bytes {self.max_bytes}; "
                "send fewer rows per request"
            )
