"""TF Serving's REST API in `vswin serve`: the documented examples, JSON rules, errors, and the same answers as gRPC.

The examples are those of tensorflow_serving/g3doc/api_rest.md (half_plus_three) and
tensorflow_serving/model_servers/http_rest_api_handler_test.cc (half_plus_two), on a
half_plus_two-style SavedModel built by tests/serving/half_plus_two.py.
"""

from __future__ import annotations

import gzip
import http.client
import json
import socket
from concurrent import futures
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.python.saved_model import loader_impl
from tensorflow_serving.apis import get_model_metadata_pb2, model_service_pb2_grpc

from tests.conftest import MICRO_MODEL_NAME
from tests.serving import half_plus_two, savedmodels
from tests.serving.requests import config_for, metadata_request, predict_request, status_request
from tests.serving.test_ports import run_vswin_serve
from vswin import contract
from vswin.serving.model_config import single_model_config
from vswin.serving.server import ModelServer, ServerOptions

pytestmark = pytest.mark.slow

LABEL = "Version_Label"  # http_rest_api_handler_test.cc's label on version 123


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(server, method: str, path: str, body: bytes | dict | None = None, headers: dict | None = None):
    """(HTTP status, Content-Type, raw body) of one request to the server's REST port."""
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=120)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        connection.close()


def rest(server, method: str, path: str, body: bytes | dict | None = None, headers: dict | None = None):
    """(HTTP status, parsed JSON body); every REST answer is JSON."""
    status, content_type, raw = call(server, method, path, body, headers)
    assert content_type == "application/json", raw
    return status, json.loads(raw)


def assert_error(answer, status: int, message: str) -> None:
    code, document = answer
    assert (code, list(document)) == (status, ["error"]), document
    assert message in document["error"]


@pytest.fixture(scope="session")
def half_plus_two_base(tmp_path_factory) -> Path:
    return half_plus_two.save_half_plus_two(tmp_path_factory.mktemp("rest") / half_plus_two.NAME)


@pytest.fixture(scope="session")
def half_plus_three_base(tmp_path_factory) -> Path:
    return half_plus_two.save_half_plus_two(tmp_path_factory.mktemp("rest") / "saved_model_half_plus_three", offset=3.0)


@pytest.fixture(scope="module")
def hp2(half_plus_two_base):
    """One half_plus_two server with the REST API for the module's tests that only send requests: none changes
    what it serves, and each error case checks that it still serves (stopping a server with REST takes 0.5 s,
    http.server's shutdown poll, so one per test added half a minute)."""
    config = config_for(half_plus_two_base, labels={LABEL: half_plus_two.VERSION}, name=half_plus_two.NAME)
    server = ModelServer(ServerOptions(model_config=config, port=0, host="127.0.0.1", rest_api_port=free_port(),
                                       file_system_poll_wait_seconds=0, max_num_load_retries=0))  # fmt: skip
    server.start()
    yield server
    server.stop(grace=5)


def still_serving(server) -> None:
    """The server answers REST and gRPC after whatever came before."""
    assert rest(server, "POST", "/v1/models/half_plus_two:predict", {"instances": [4.0]}) == (200, {"predictions": [4.0]})
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(status_request("half_plus_two"), timeout=30)
        assert status.model_version_status[0].version == half_plus_two.VERSION
    finally:
        channel.close()


# -- the documented examples ------------------------------------------------------------------------------


def test_api_rest_md_examples_status_predict_and_error(start_server, half_plus_three_base):
    server = start_server(single_model_config("saved_model_half_plus_three", half_plus_three_base),
                          rest_api_port=free_port())  # fmt: skip
    status = {"model_version_status": [
        {"version": "123", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    ]}  # fmt: skip
    assert rest(server, "GET", "/v1/models/saved_model_half_plus_three") == (200, status)
    answer = rest(server, "POST", "/v1/models/saved_model_half_plus_three:predict", b'{"instances": [1.0,2.0,5.0]}')
    assert answer == (200, {"predictions": [3.5, 4.0, 5.5]})
    code, content_type, raw = call(server, "POST", "/v1/models/half:predict", b'{"instances": [1.0,5.0]}')
    assert (code, content_type) == (404, "application/json")
    assert json.loads(raw) == {"error": "Servable not found for request: Latest(half); "
                                        "models served: saved_model_half_plus_three"}


def test_handler_test_predict_examples_by_latest_version_label_signature_and_columnar(hp2):
    base = "/v1/models/half_plus_two"
    cases = [
        (f"{base}:predict", {"instances": [[1.0, 2.0], [3.0, 4.0]]}, {"predictions": [[2.5, 3.0], [3.5, 4.0]]}),
        (f"{base}/versions/123:predict", {"instances": [1.0, 2.0]}, {"predictions": [2.5, 3.0]}),
        (f"{base}/labels/{LABEL}:predict", {"instances": [1.0, 2.0]}, {"predictions": [2.5, 3.0]}),
        (f"{base}/versions/123:predict", {"signature_name": "serving_default", "instances": [3.0, 4.0]},
         {"predictions": [3.5, 4.0]}),
        (f"{base}/versions/123:predict", {"signature_name": "serving_default", "inputs": [3.0, 4.0]},
         {"outputs": [3.5, 4.0]}),
    ]  # fmt: skip
    for path, body, expected in cases:
        assert rest(hp2, "POST", path, body) == (200, expected), path


def test_handler_test_status_by_model_version_and_label(hp2):
    expected = {"model_version_status": [
        {"version": "123", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    ]}  # fmt: skip
    for path in ("/v1/models/half_plus_two", "/v1/models/half_plus_two/versions/123", f"/v1/models/half_plus_two/labels/{LABEL}"):
        assert rest(hp2, "GET", path) == (200, expected), path


def test_metadata_is_the_signature_def_map_as_tf_serving_renders_it(hp2, stubs, half_plus_two_base):
    for path in ("/v1/models/half_plus_two/metadata", "/v1/models/half_plus_two/versions/123/metadata",
                 f"/v1/models/half_plus_two/labels/{LABEL}/metadata"):  # fmt: skip
        code, document = rest(hp2, "GET", path)
        assert code == 200 and set(document) == {"model_spec", "metadata"}
        assert document["model_spec"] == {"name": "half_plus_two", "signature_name": "", "version": "123"}
    signatures = document["metadata"]["signature_def"]["signature_def"]
    unknown = {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [], "unknown_rank": True}}
    assert signatures["serving_default"] == {
        "inputs": {"x": {**unknown, "name": "x:0"}}, "outputs": {"y": {**unknown, "name": "y:0"}},
        "method_name": "tensorflow/serving/predict", "defaults": {},
    }  # fmt: skip
    assert signatures["pixels"]["inputs"]["pixels"] == {
        "dtype": "DT_UINT8", "name": "pixels:0",
        "tensor_shape": {"dim": [{"size": "-1", "name": ""}, {"size": "3", "name": ""}], "unknown_rank": False},
    }  # fmt: skip
    saved = loader_impl.parse_saved_model(str(half_plus_two_base / half_plus_two.VERSION_DIR)).meta_graphs[0]
    from_grpc = get_model_metadata_pb2.SignatureDefMap()
    stubs(hp2)[0].GetModelMetadata(metadata_request("half_plus_two"), timeout=30).metadata["signature_def"].Unpack(from_grpc)
    for source in (saved, from_grpc):
        assert signatures == {
            key: json_format.MessageToDict(value, always_print_fields_with_no_presence=True,
                                           preserving_proto_field_name=True)
            for key, value in source.signature_def.items()
        }  # fmt: skip


def test_regress_and_classify_are_unimplemented_with_tf_servings_error_shape(hp2):
    body = {"signature_name": "tensorflow/serving/regress", "examples": [{"x": 1.0}, {"x": 2.0}]}
    for verb in ("regress", "classify"):
        assert_error(rest(hp2, "POST", f"/v1/models/half_plus_two:{verb}", body), 501, f"the {verb} API")
    still_serving(hp2)


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v1/models/half_plus_two:predict", b"", 400, "JSON Parse error: The document is empty"),
        ("/v1/models/half_plus_two:predict", b"instances = [1, 2]", 400, "JSON Parse error: Expecting value"),
        ("/v1/models/half_plus_two:predict", b'{ "instances": ["x", "y"] }', 400, "not of expected type: float"),
        (f"/v1/models/half_plus_two/labels/Version_Nonexistent:predict", b'{ "instances": ["x", "y"] }', 400,
         "Unrecognized servable version label"),
        ("/v1/models/half_plus_two:predict", b'{ "signature_name": 100 }', 400,
         "'signature_name' key must be a string value."),
        ("/v1/models/foo:predict", b'{ "instances": [1] }', 404, "Servable not found for request: Latest(foo)"),
        ("/v1/models/foo/versions/50:predict", b'{ "instances": [1] }', 404, "Specific(foo, 50)"),
        ("/v1/models/half_plus_two99:predict", b'{ "instances": [1] }', 404, "Latest(half_plus_two99)"),
        ("/v1/models/half_plus_two/versions/99:predict", b'{ "instances": [1] }', 404, "Specific(half_plus_two, 99)"),
    ],
)  # fmt: skip
def test_handler_test_predict_errors_and_the_server_keeps_serving(hp2, path, body, status, message):
    assert_error(rest(hp2, "POST", path, body), status, message)
    still_serving(hp2)


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "/v1/foo", "Malformed request: GET /v1/foo"),
        ("POST", "/v1/foo", "Malformed request"),
        ("GET", "/v1/models", "Missing model name in request."),
        ("GET", "/v1/models/debug/model_name", "Malformed request"),
        ("POST", "/v1/models", "Malformed request"),
        ("GET", "/v1/models/foo:predict", "Malformed request"),
        ("GET", "/v1/models/foo/version/50:predict", "Malformed request"),
        ("POST", "/v1/models/foo/version/50:regress", "Malformed request"),
        ("POST", "/v1/models/foo/versions/HELLO:regress", "Malformed request"),
        ("POST", f"/v1/models/foo/versions/{2**64 - 1}:regress", "Failed to convert version"),
        ("POST", "/v1/models/foo/metadata", "Malformed request"),
        ("POST", "/v1/models/foo/label/some_label:regress", "Malformed request"),
        ("POST", "/v1/models/foo/versions/50/labels/some_label:regress", "Malformed request"),
        ("POST", "/v1/models/foo/versions/some_label:regress", "Malformed request"),
        ("PUT", "/v1/models/half_plus_two:predict", "Malformed request: PUT"),
        ("DELETE", "/v1/models/half_plus_two", "Malformed request: DELETE"),
    ],
)
def test_handler_test_unsupported_api_calls_are_bad_requests(hp2, method, path, message):
    assert_error(rest(hp2, method, path, b'{"instances": [1.0]}'), 400, message)
    still_serving(hp2)


def test_unknown_model_version_and_label_answer_each_api_with_its_status(hp2):
    assert_error(rest(hp2, "GET", "/v1/models/foo"), 404, "Could not find any versions of model foo")
    assert_error(rest(hp2, "GET", "/v1/models/half_plus_two/versions/7"), 404,
                 "Could not find version 7 of model half_plus_two")  # fmt: skip
    assert_error(rest(hp2, "GET", "/v1/models/half_plus_two/labels/nope"), 400, "Unrecognized servable version label: nope")
    assert_error(rest(hp2, "GET", "/v1/models/foo/metadata"), 404, "Servable not found for request: Latest(foo)")
    assert_error(rest(hp2, "GET", "/v1/models/half_plus_two/versions/7/metadata"), 404, "Specific(half_plus_two, 7)")
    assert_error(rest(hp2, "GET", "/v1/models/half_plus_two/labels/nope/metadata"), 400,
                 "Unrecognized servable version label: nope")  # fmt: skip
    still_serving(hp2)


def test_paths_off_the_api_are_not_found_and_head_answers_without_a_body(hp2):
    code, content_type, raw = call(hp2, "GET", "/v2/models/half_plus_two")
    assert (code, content_type) == (404, "application/json") and "the REST API is under /v1/" in json.loads(raw)["error"]
    code, _, raw = call(hp2, "HEAD", "/v1/models/half_plus_two")
    assert (code, raw) == (400, b"")
    assert rest(hp2, "GET", "/V1/MODELS/half_plus_two")[0] == 200  # TF Serving matches paths case-insensitively


# -- TF Serving's JSON rules through the server ---------------------------------------------------------------


def test_b64_bytes_and_utf8_text_round_trip_in_both_formats(hp2):
    path = "/v1/models/half_plus_two:predict"
    row = {"signature_name": "strings", "instances": [
        {"text": "caf\u00e9", "image_bytes": {"b64": "aW1hZ2UgYnl0ZXM="}},
        {"text": "x", "image_bytes": {"b64": "AP8="}},
    ]}  # fmt: skip
    assert rest(hp2, "POST", path, row) == (200, {"predictions": [
        {"upper": "CAF\u00e9", "image_bytes": {"b64": "aW1hZ2UgYnl0ZXM="}, "length": 11},
        {"upper": "X", "image_bytes": {"b64": "AP8="}, "length": 2},
    ]})  # fmt: skip
    columnar = {"signature_name": "strings", "inputs": {"text": ["a"], "image_bytes": [{"b64": "AAAA"}]}}
    assert rest(hp2, "POST", path, columnar) == (200, {"outputs": {"upper": ["A"], "image_bytes": [{"b64": "AAAA"}], "length": [3]}})
    bad = {"signature_name": "strings", "inputs": {"text": ["a"], "image_bytes": [{"b64": "not base64!"}]}}
    assert_error(rest(hp2, "POST", path, bad), 400, "Unable to base64 decode")
    still_serving(hp2)


def test_several_named_inputs_with_bools_in_row_and_columnar_format(hp2):
    path = "/v1/models/half_plus_two:predict"
    row = {"signature_name": "mixed", "instances": [{"a": [1, 2.5], "b": 3, "flag": True},
                                                    {"a": [0, 0], "b": -1, "flag": False}]}  # fmt: skip
    expected = [{"sum": 6.5, "not_flag": False}, {"sum": -1.0, "not_flag": True}]
    assert rest(hp2, "POST", path, row) == (200, {"predictions": expected})
    columnar = {"signature_name": "mixed", "inputs": {"a": [[1, 2.5], [0, 0]], "b": [3, -1], "flag": [True, False]}}
    assert rest(hp2, "POST", path, columnar) == (200, {"outputs": {"sum": [6.5, -1.0], "not_flag": [False, True]}})
    assert_error(rest(hp2, "POST", path, {"signature_name": "mixed", "instances": [[1, 2]]}), 400,
                 "instances is a plain list, but expecting list of objects")  # fmt: skip
    assert_error(rest(hp2, "POST", path, {"signature_name": "mixed", "inputs": {"a": [[1, 2]], "b": [1]}}), 400,
                 "Missing named input: flag in 'inputs' object.")  # fmt: skip
    still_serving(hp2)


@pytest.mark.parametrize(
    ("pixels", "message"),
    [
        ([[1, 2, 300]], "JSON Value: 300 Type: Number is not of expected type: uint8 (out of its range 0..255)"),
        ([[1, 2, -1]], "out of its range 0..255"),
        ([[1, 2, 1.5]], "JSON Value: 1.5 Type: Number is not of expected type: uint8"),
        ([[1, 2, True]], "JSON Value: true Type: True is not of expected type: uint8"),
        ([[1, 2, "3"]], 'JSON Value: "3" Type: String is not of expected type: uint8'),
        ([[1, 2]], "input 'pixels' expects uint8 [-1,3], got uint8 [1,2]"),
        ([1, 2, 3], "input 'pixels' expects uint8 [-1,3], got uint8 [3]"),
    ],
)
def test_uint8_inputs_take_integers_in_range_and_wrong_ones_are_bad_requests(hp2, pixels, message):
    path = "/v1/models/half_plus_two:predict"
    assert_error(rest(hp2, "POST", path, {"signature_name": "pixels", "instances": pixels}), 400, message)
    answer = rest(hp2, "POST", path, {"signature_name": "pixels", "instances": [[0, 128, 255], [3, 3, 3]]})
    assert answer == (200, {"predictions": [{"mean": 127.666664, "pixels": [0, 128, 255]},
                                            {"mean": 3.0, "pixels": [3, 3, 3]}]})  # fmt: skip


def test_doubles_int64_and_non_finite_floats_keep_their_values(hp2):
    body = b'{"signature_name": "wide", "inputs": {"x": [0.1, NaN, Infinity, -Infinity], "n": [4611686018427387905]}}'
    code, content_type, raw = call(hp2, "POST", "/v1/models/half_plus_two:predict", body)
    assert code == 200, raw
    assert raw == b'{"outputs": {"n": [4611686018427387905], "x": [0.1, NaN, Infinity, -Infinity]}}'


def test_float_outputs_are_written_in_their_shortest_float32_form(hp2):
    _, _, raw = call(hp2, "POST", "/v1/models/half_plus_two:predict", b'{"instances": [0.1, 0.3]}')
    assert raw == b'{"predictions": [2.05, 2.15]}'  # not 2.049999952316284


def test_signature_and_dtype_problems_are_bad_requests(hp2):
    path = "/v1/models/half_plus_two:predict"
    assert_error(rest(hp2, "POST", path, {"signature_name": "nope", "instances": [1]}), 400,
                 'Serving signature key "nope" not found.')  # fmt: skip
    assert_error(rest(hp2, "POST", path, {"signature_name": "half", "instances": [1.0]}), 400,
                 "Failed to write JSON value for tensor type: half")  # fmt: skip
    assert_error(rest(hp2, "POST", path, {"instances": [1.0], "inputs": [1.0]}), 400, "expecting only one of")
    assert_error(rest(hp2, "POST", path, {"instances": []}), 400, "No values in 'instances' array")
    still_serving(hp2)


def test_an_internal_signature_is_a_bad_request(start_server, model_base):
    """TF Serving says "Failed to get input map for signature: __saved_model_init_op"; both APIs here say why."""
    server = start_server(config_for(model_base), rest_api_port=free_port())
    answer = rest(server, "POST", "/v1/models/tiny:predict", {"signature_name": "__saved_model_init_op", "instances": [1]})
    assert_error(answer, 400, 'signature "__saved_model_init_op" is internal to the SavedModel and cannot be called')


# -- the same answers as gRPC ---------------------------------------------------------------------------------


def test_rest_and_grpc_give_the_same_features_from_the_micro_export(start_server, stubs, micro_export, micro_loaded):
    server = start_server(single_model_config(MICRO_MODEL_NAME, micro_export), rest_api_port=free_port(),
                          enable_model_warmup=False)  # fmt: skip
    frames = np.random.default_rng(3).integers(0, 256, size=(2, 16, 64, 64, 3), dtype=np.uint8)
    signature = contract.FEATURES_GRAPH
    response = stubs(server)[0].Predict(predict_request(MICRO_MODEL_NAME, {contract.FRAMES: frames}, signature), timeout=120)
    by_grpc = tf.make_ndarray(response.outputs[contract.FEATURES])
    path = f"/v1/models/{MICRO_MODEL_NAME}:predict"
    bodies = {
        "row": {"signature_name": signature, "instances": frames.tolist()},
        "columnar": {"signature_name": signature, "inputs": {contract.FRAMES: frames.tolist()}},
        # A top-level key other than the request's is ignored; its `true` makes the reading element-wise.
        "columnar, element-wise": {"signature_name": signature, "inputs": frames.tolist(), "note": True},
    }
    for how, body in bodies.items():
        code, document = rest(server, "POST", path, body)
        assert code == 200, (how, document)
        by_rest = np.array(document["predictions" if "instances" in body else "outputs"], np.float32)
        np.testing.assert_array_equal(by_rest, by_grpc, err_msg=how)
    in_process = micro_loaded.signatures[signature]
    reference = in_process(**{contract.FRAMES: tf.constant(frames)})[contract.FEATURES].numpy()
    np.testing.assert_allclose(by_grpc, reference, atol=1e-4, rtol=0)
    body = {"signature_name": contract.METADATA, "instances": [0]}
    code, document = rest(server, "POST", path, body)
    served = json.loads(document["predictions"][0])  # the serving part of the export's vswin.json
    exported = json.loads((micro_export / "1" / contract.ASSETS_EXTRA / contract.METADATA_FILE).read_text())
    assert code == 200 and served and {key: exported[key] for key in served} == served


def test_rest_and_grpc_agree_on_every_output_status_and_metadata(start_server, stubs, model_base):
    server = start_server(config_for(model_base), rest_api_port=free_port())
    predict, models = stubs(server)
    frames = savedmodels.clips(3)
    response = predict.Predict(predict_request("tiny", {"frames": frames}, contract.CLASSIFY), timeout=60)
    by_grpc = {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}
    code, document = rest(server, "POST", "/v1/models/tiny/versions/1:predict",
                          {"signature_name": contract.CLASSIFY, "instances": frames.tolist()})  # fmt: skip
    assert code == 200 and len(document["predictions"]) == 3
    for name, value in by_grpc.items():
        np.testing.assert_array_equal(np.array([row[name] for row in document["predictions"]], value.dtype), value)
    status = models.GetModelStatus(status_request("tiny"), timeout=30)
    assert rest(server, "GET", "/v1/models/tiny") == (
        200, json_format.MessageToDict(status, always_print_fields_with_no_presence=True)
    )  # fmt: skip
    signatures = get_model_metadata_pb2.SignatureDefMap()
    predict.GetModelMetadata(metadata_request("tiny"), timeout=30).metadata["signature_def"].Unpack(signatures)
    code, document = rest(server, "GET", "/v1/models/tiny/metadata")
    assert code == 200 and json_format.ParseDict(document["metadata"]["signature_def"],
                                                 get_model_metadata_pb2.SignatureDefMap()) == signatures  # fmt: skip


def test_grpc_status_entries_carry_an_ok_status_as_tf_servings_do(hp2, stubs):
    status = stubs(hp2)[1].GetModelStatus(status_request("half_plus_two"), timeout=30)
    assert status.model_version_status[0].HasField("status")
    assert (status.model_version_status[0].status.error_code, status.model_version_status[0].status.error_message) == (0, "")


# -- the HTTP server ------------------------------------------------------------------------------------------


def test_metrics_share_the_rest_port_and_count_rest_requests(start_server, half_plus_two_base):
    monitoring = Path(__file__).resolve().parents[2] / "serving_config" / "monitoring.config"
    server = start_server(config_for(half_plus_two_base, name="half_plus_two"), rest_api_port=free_port(),
                          monitoring_config_file=str(monitoring))  # fmt: skip
    assert rest(server, "POST", "/v1/models/half_plus_two:predict", {"instances": [1.0]})[0] == 200
    assert rest(server, "POST", "/v1/models/missing:predict", {"instances": [1.0]})[0] == 404
    code, content_type, raw = call(server, "GET", "/monitoring/prometheus/metrics")
    assert code == 200 and content_type.startswith("text/plain")
    text = raw.decode()
    assert ':tensorflow:serving:request_count_total{model_name="half_plus_two",signature="serving_default",' \
           'status="OK",version="123"} 1.0' in text  # fmt: skip
    assert 'model_name="missing",signature="serving_default",status="NOT_FOUND",version=""} 1.0' in text


def test_a_taken_rest_port_fails_the_start_and_the_first_server_keeps_serving(hp2, start_server, half_plus_two_base):
    config = config_for(half_plus_two_base, name="half_plus_two")
    with pytest.raises(OSError, match=f"cannot serve HTTP .* on 127.0.0.1:{hp2.rest_port}: address already in use"):
        start_server(config, rest_api_port=hp2.rest_port)
    port = free_port()
    same = ModelServer(ServerOptions(model_config=config, port=port, host="127.0.0.1", rest_api_port=port))
    with pytest.raises(ValueError, match=f"--rest_api_port {port} is also the gRPC --port"):
        same.start()
    same.stop(grace=0)
    still_serving(hp2)


def test_vswin_serve_exits_non_zero_when_the_rest_port_is_taken_before_tensorflow_loads(half_plus_two_base,
                                                                                      subprocess_env):  # fmt: skip
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        outcome, stderr = run_vswin_serve([f"--port={free_port()}", "--host=127.0.0.1", f"--rest_api_port={port}",
                                           "--model_name=half_plus_two", f"--model_base_path={half_plus_two_base}"],
                                          subprocess_env)  # fmt: skip
    assert outcome == {"code": 1, "tensorflow": False}, stderr[-3000:]
    assert f"cannot serve HTTP (REST API, metrics) on 127.0.0.1:{port}: address already in use" in stderr


def test_bodies_above_the_message_limit_are_resource_exhausted_and_nothing_else_is_affected(start_server, half_plus_two_base):
    server = start_server(config_for(half_plus_two_base, name="half_plus_two"), rest_api_port=free_port(),
                          grpc_max_message_size=2000)  # fmt: skip
    path = "/v1/models/half_plus_two:predict"
    big = json.dumps({"instances": [1.0] * 1000}).encode()
    assert_error(rest(server, "POST", path, big), 429, f"request body of {len(big)} bytes is larger than the limit of 2000")
    assert_error(rest(server, "POST", path, b"{}", {"Content-Length": str(10**12)}), 429, "larger than the limit")
    assert_error(rest(server, "POST", path, gzip.compress(big), {"Content-Encoding": "gzip"}), 429,
                 "inflates to more than the limit of 2000 bytes")  # fmt: skip
    assert rest(server, "POST", path, {"instances": [1.0] * 8})[0] == 200


def test_gzip_and_chunked_bodies_are_read_as_tf_serving_reads_them(hp2):
    path = "/v1/models/half_plus_two:predict"
    body = json.dumps({"instances": [1.0, 2.0]}).encode()
    assert rest(hp2, "POST", path, gzip.compress(body), {"Content-Encoding": "gzip"}) == (200, {"predictions": [2.5, 3.0]})
    connection = http.client.HTTPConnection("127.0.0.1", hp2.rest_port, timeout=60)
    try:
        connection.request("POST", path, body=iter([body[:5], body[5:]]), encode_chunked=True)
        response = connection.getresponse()
        assert (response.status, json.loads(response.read())) == (200, {"predictions": [2.5, 3.0]})
    finally:
        connection.close()
    assert_error(rest(hp2, "POST", path, b"not gzip", {"Content-Encoding": "gzip"}), 400, "not valid gzip")
    still_serving(hp2)


def test_rest_requests_go_through_the_batch_scheduler_with_the_rest_timeout(start_server, stubs, model_base, tmp_path):
    parameters = tmp_path / "batching.txt"
    parameters.write_text("max_batch_size { value: 2 } batch_timeout_micros { value: 3000000 }")
    server = start_server(config_for(model_base), rest_api_port=free_port(), enable_batching=True,
                          batching_parameters_file=str(parameters), rest_api_timeout_in_ms=300)  # fmt: skip
    path = "/v1/models/tiny:predict"
    body = {"signature_name": contract.FEATURES_GRAPH, "instances": savedmodels.clips(1).tolist()}
    assert rest(server, "POST", path, body) == (504, {"error": "Deadline exceeded while waiting in the batch queue"})
    clips = savedmodels.clips(3)
    with pytest.raises(grpc.RpcError) as by_grpc:
        stubs(server)[0].Predict(predict_request("tiny", {"frames": clips}, contract.FEATURES_GRAPH), timeout=60)
    assert by_grpc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    too_big = {"signature_name": contract.FEATURES_GRAPH, "instances": clips.tolist()}
    assert rest(server, "POST", path, too_big) == (400, {"error": by_grpc.value.details()})


def test_concurrent_requests_queue_for_the_rest_threads(start_server, half_plus_two_base):
    server = start_server(config_for(half_plus_two_base, name="half_plus_two"), rest_api_port=free_port(),
                          rest_api_num_threads=1)  # fmt: skip
    with futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(
            lambda x: rest(server, "POST", "/v1/models/half_plus_two:predict", {"instances": [float(x)]}), range(16)
        ))  # fmt: skip
    assert answers == [(200, {"predictions": [0.5 * x + 2]}) for x in range(16)]


def test_stopping_the_server_frees_the_rest_port(start_server, half_plus_two_base):
    port = free_port()
    server = start_server(config_for(half_plus_two_base, name="half_plus_two"), rest_api_port=port)
    server.stop(grace=5)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    again = start_server(config_for(half_plus_two_base, name="half_plus_two"), rest_api_port=port)
    assert rest(again, "GET", "/v1/models/half_plus_two")[0] == 200


def test_rest_flags_take_tf_servings_names_and_defaults():
    from vswin.cli import build_parser
    from vswin.serving.flags import default_rest_api_threads
    from vswin.serving.main import options_from_args

    def options(*flags: str) -> ServerOptions:
        return options_from_args(build_parser().parse_args(["serve", "--model_base_path=/m", *flags]))

    default = options()
    assert (default.rest_api_port, default.rest_api_timeout_in_ms) == (0, 30000)
    assert default.rest_api_num_threads == default_rest_api_threads() >= 4
    chosen = options("--rest_api_port=8501", "--rest_api_num_threads=3", "--rest_api_timeout_in_ms=0")
    assert (chosen.rest_api_port, chosen.rest_api_num_threads, chosen.rest_api_timeout_in_ms) == (8501, 3, 0)


def test_rest_requests_get_the_same_size_limits_as_grpc(start_server, half_plus_two_base):
    server = start_server(config_for(half_plus_two_base, name="half_plus_two"), rest_api_port=free_port(),
                          max_request_bytes=40)  # fmt: skip
    path = "/v1/models/half_plus_two:predict"
    assert_error(rest(server, "POST", path, {"instances": [1.0] * 9}), 400,
                 "Task size 9 is larger than maximum input batch size 8 (--max_request_batch_size")  # fmt: skip
    assert_error(rest(server, "POST", path, {"instances": [[1.0] * 6] * 2}), 429,
                 "decode to 48 bytes, more than --max_request_bytes 40")  # fmt: skip
    assert rest(server, "POST", path, {"instances": [1.0] * 8})[0] == 200
