"""A listener with a certificate and key serves TLS (e.g. federation on 8448)."""

from __future__ import annotations

import datetime

import requests
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.harness import TestServer


def _self_signed(tmp_path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tls.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_federation_listener_serves_tls(tmp_path) -> None:
    cert, key = _self_signed(tmp_path)
    srv = TestServer(
        str(tmp_path),
        "sqlite",
        {
            "listeners": [
                {"bind_address": "127.0.0.1", "port": 0, "resources": ["client"]},
                {"bind_address": "127.0.0.1", "port": 0, "resources": ["federation", "keys"], "tls_certificate": cert, "tls_private_key": key},
                {"bind_address": "127.0.0.1", "port": 0, "resources": ["metrics"]},
            ]
        },
    ).start()
    try:
        port = srv.app.ports[1].getHost().port
        urllib3.disable_warnings()
        r = requests.get(f"https://127.0.0.1:{port}/_matrix/key/v2/server", verify=False, timeout=10)
        assert r.status_code == 200 and r.json()["server_name"] == srv.server_name
        # plain HTTP on the TLS port does not work
        try:
            plain = requests.get(f"http://127.0.0.1:{port}/_matrix/key/v2/server", timeout=5)
            assert plain.status_code >= 400
        except requests.RequestException:
            pass
    finally:
        srv.stop()
