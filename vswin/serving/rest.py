"""TF Serving's REST API (g3doc/api_rest.md): routes, JSON answers and HTTP status codes, without sockets.

As tensorflow_serving/model_servers/http_rest_api_handler.cc answers them:

    GET  /v1/models/NAME[/versions/N|/labels/L]             GetModelStatusResponse as JSON
    GET  /v1/models/NAME[/versions/N|/labels/L]/metadata    GetModelMetadataResponse (signature_def) as JSON
    POST /v1/models/NAME[/versions/N|/labels/L]:predict     row ("instances") or columnar ("inputs") JSON
    POST /v1/models/NAME[/versions/N|/labels/L]:classify    UNIMPLEMENTED, as gRPC Classify here
    POST /v1/models/NAME[/versions/N|/labels/L]:regress     UNIMPLEMENTED, as gRPC Regress here

Status, metadata and predict go through the same functions as the gRPC services (model_status,
model_metadata, Predictor), so both APIs answer with the same versions, checks, limits, batching and
metrics. A failure is `{"error": message}` with the HTTP status TF Serving's http_server.cc maps from
the gRPC status code.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import unquote

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from tensorflow_serving.apis import get_model_metadata_pb2, model_pb2

from vswin.serving import json_tensors
from vswin.serving.errors import ServingError, invalid_argument
from vswin.serving.manager import ModelManager
from vswin.serving.model_service import model_status
from vswin.serving.prediction_service import SIGNATURE_DEF_FIELD, model_metadata
from vswin.serving.predictor import Predictor

log = logging.getLogger(__name__)

API_PATH = re.compile(r"/v1/.*", re.IGNORECASE)  # the paths the REST API answers (TF Serving's kPathRegex)
_MODEL = r"/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?"
_PREDICTION_PATH = re.compile(_MODEL + r":(classify|regress|predict)", re.IGNORECASE)
_STATUS_PATH = re.compile(r"/v1/models(?:/([^/:]+))?(?:/versions/(\d+)|/labels/([^/:]+))?(?:/(metadata))?",
                          re.IGNORECASE)  # fmt: skip
PREDICT_METHOD = "predict"
METADATA_RESOURCE = "metadata"
_INT64_MAX = 2**63 - 1

# tensorflow_serving/model_servers/http_server.cc ToHTTPStatusCode.
HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,  # nginx's "client closed request"
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}


class RestApi:
    """Answers one REST request: `handle(method, path, body)` -> (HTTP status, JSON body)."""

    def __init__(self, manager: ModelManager, predictor: Predictor, timeout: float | None = None) -> None:
        self.manager = manager
        self.predictor = predictor
        self.timeout = timeout  # seconds a predict may take (--rest_api_timeout_in_ms); None: no limit

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        """The HTTP status and JSON body answering `method path` (`path` without its query string)."""
        try:
            return HTTP_STATUS[grpc.StatusCode.OK], dumps(self._dispatch(method, path, body))
        except ServingError as err:
            return error(err)
        except Exception as err:  # never let a request take the server down
            log.exception("REST %s %s failed", method, path)
            return error(ServingError(grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}"))

    def _dispatch(self, method: str, path: str, body: bytes) -> dict[str, Any]:
        malformed = invalid_argument(f"Malformed request: {method} {path}")
        if method == "POST" and (match := _PREDICTION_PATH.fullmatch(path)):
            spec = _model_spec(*match.groups()[:3])
            if match.group(4) != PREDICT_METHOD:
                if match.group(4).lower() == PREDICT_METHOD:
                    raise malformed  # TF Serving matches the path case-insensitively, the verb exactly
                raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                                   f"vswin serve does not implement the {match.group(4)} API (nor gRPC's "
                                   "Classify and Regress); call :predict with the signature you need")  # fmt: skip
            return self._predict(spec, body)
        if method == "GET" and (match := _STATUS_PATH.fullmatch(path)):
            if not match.group(1):
                raise invalid_argument("Missing model name in request.")
            spec = _model_spec(*match.groups()[:3])
            if match.group(4) == METADATA_RESOURCE:
                return _metadata_json(model_metadata(self.manager, spec, [SIGNATURE_DEF_FIELD]))
            return _message_json(model_status(self.manager, spec))
        raise malformed

    def _predict(self, spec: model_pb2.ModelSpec, body: bytes) -> dict[str, Any]:
        document = json_tensors.parse_request(body)
        spec.signature_name = json_tensors.signature_name(document)
        exact = b"true" in body or b"false" in body  # numpy reads a JSON bool as a number: check element-wise

        def decode(signature):
            return json_tensors.decode_inputs(document, signature.inputs, exact)

        prediction = self.predictor.predict(spec, decode, [], self.timeout)
        return json_tensors.encode_outputs(prediction.outputs, json_tensors.request_format(document))


def error(err: ServingError) -> tuple[int, bytes]:
    """TF Serving's error answer: the mapped HTTP status and `{"error": message}`."""
    return HTTP_STATUS.get(err.code, 500), dumps(json_tensors.error_body(err.message))


def dumps(document: dict[str, Any]) -> bytes:
    """JSON text with NaN/Infinity/-Infinity for non-finite numbers, as TF Serving writes them."""
    return json.dumps(document).encode()


def _model_spec(name: str, version: str | None, label: str | None) -> model_pb2.ModelSpec:
    """The ModelSpec of a URL's model part; names and labels are URL-decoded as TF Serving does."""
    spec = model_pb2.ModelSpec(name=unquote(name))
    if version is not None:
        number = int(version)
        if number > _INT64_MAX:
            raise invalid_argument(f"Failed to convert version: {version} to numeric.")
        spec.version.value = number
    if label is not None:
        spec.version_label = unquote(label)
    return spec


def _message_json(message: Message, proto_names: bool = False) -> dict[str, Any]:
    """A proto as TF Serving's REST API prints it: every field, defaults included."""
    return json_format.MessageToDict(
        message, always_print_fields_with_no_presence=True, preserving_proto_field_name=proto_names
    )


def _metadata_json(response: get_model_metadata_pb2.GetModelMetadataResponse) -> dict[str, Any]:
    """{"model_spec": ..., "metadata": {"signature_def": SignatureDefMap}} with proto field names."""
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata[SIGNATURE_DEF_FIELD].Unpack(signatures)
    return {
        "model_spec": _message_json(response.model_spec, proto_names=True),
        "metadata": {SIGNATURE_DEF_FIELD: _message_json(signatures, proto_names=True)},
    }
