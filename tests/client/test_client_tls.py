"""TLS and mutual TLS to the real in-process server, with certificates made in the test (openssl CLI)."""

from __future__ import annotations

import subprocess

import grpc
import numpy as np
import pytest

from tests.tiny_exports import TinyServer, expected_features, tiny_config
from vswin.client import ServerUnavailable, VideoSwinClient


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A test CA, a server certificate for localhost/127.0.0.1 and a client certificate, all signed by the CA."""
    d = tmp_path_factory.mktemp("certs")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=vswin-test-ca", cwd=d)
    for name, san in (("server", "DNS:localhost,IP:127.0.0.1"), ("client", "DNS:client")):
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        (d / f"{name}.ext").write_text(f"subjectAltName={san}\n")
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "1", "-extfile", f"{name}.ext", cwd=d,
        )  # fmt: skip
    return d


@pytest.fixture()
def mtls_server(certs, tiny_exports):
    credentials = grpc.ssl_server_credentials(
        [((certs / "server.key").read_bytes(), (certs / "server.pem").read_bytes())],
        root_certificates=(certs / "ca.pem").read_bytes(),
        require_client_auth=True,
    )
    server = TinyServer(tiny_config(tiny_exports, ("fake",)), credentials=credentials)
    yield server.target
    server.stop()


def test_mutual_tls_with_root_and_client_certificates(certs, mtls_server):
    frames = np.random.default_rng(0).integers(0, 256, (2, 4, 32, 32, 3), dtype=np.uint8)
    with VideoSwinClient(
        mtls_server,
        "fake",
        root_certificates=certs / "ca.pem",
        client_certificate=certs / "client.pem",
        client_key=(certs / "client.key").read_bytes(),
    ) as client:
        np.testing.assert_array_equal(client.features(frames), expected_features(frames))


def test_tls_without_the_client_certificate_is_refused(certs, mtls_server):
    from vswin.client import RetryPolicy

    with VideoSwinClient(
        mtls_server, "fake", root_certificates=certs / "ca.pem", timeout=3.0, retry=RetryPolicy(max_attempts=1)
    ) as client, pytest.raises(ServerUnavailable):
        client.model_info()


def test_client_certificate_needs_its_key(certs):
    with pytest.raises(ValueError, match="go together"):
        VideoSwinClient("127.0.0.1:1", "fake", client_certificate=certs / "client.pem")
