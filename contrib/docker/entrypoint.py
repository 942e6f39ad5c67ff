#!/opt/sup/bin/python
"""Container entrypoint: first-start setup, then ``sup run`` (all-in-one) or ``sup worker $SUP_ROLE``.

Everything is configured by environment (``SUP_*`` options, see ``sup generate-config``) or by a mounted file
(``SUP_CONFIG=/path/homeserver.yaml``). Only the variables below belong to the entrypoint and are removed
before SUP starts:

  SUP_ROLE       main | all (default: the whole server in one process) or a worker role
                 (client, sync, event_persister, federation_inbound, federation_sender, media, pusher, background)
  SUP_TLS_CERT   PEM certificate for the federation listener on 8448 (with SUP_TLS_KEY); when neither is given,
  SUP_TLS_KEY    a self-signed certificate for the server name is generated on first start into /data/tls/
  SUP_NO_TLS     "1": no TLS listener at all (a reverse proxy terminates TLS)

Default listeners (when neither SUP_LISTENERS nor a config file sets them): 8008 plain HTTP for client, media,
admin and federation (behind a proxy), 8448 TLS for federation, 9000 metrics.
The registration shared secret (``SUP_REGISTRATION__SHARED_SECRET``) is generated on first start into
/data/registration_shared_secret when not given, so ``register_new_matrix_user``-style tools work at once.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
import sys

DATA = os.environ.get("SUP_DATA_DIR", "/data")
ENTRYPOINT_VARS = ("SUP_ROLE", "SUP_TLS_CERT", "SUP_TLS_KEY", "SUP_NO_TLS")


def self_signed(server_name: str, cert_path: str, key_path: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, server_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(server_name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    os.makedirs(os.path.dirname(cert_path), exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    print(f"entrypoint: generated a self-signed certificate for {server_name} in {cert_path}", file=sys.stderr)


def main() -> None:
    env = os.environ
    role = (env.get("SUP_ROLE") or "all").strip()
    server_name = env.get("SUP_SERVER_NAME", "localhost")
    os.makedirs(DATA, exist_ok=True)

    worker = role not in ("all", "main") or (role == "main" and bool(env.get("SUP_DEPLOYMENT")))
    health = "http://127.0.0.1:8008/health"
    if "SUP_LISTENERS" not in env and "SUP_CONFIG" not in env and role not in ("all", "main"):
        # a worker's public listener comes from the deployment file; the config keeps only metrics
        env["SUP_LISTENERS"] = json.dumps([{"bind_address": "0.0.0.0", "port": 9000, "resources": ["metrics"]}])
        health = _worker_health_url(env)
    elif "SUP_LISTENERS" not in env and "SUP_CONFIG" not in env:
        listeners = [
            {"bind_address": "0.0.0.0", "port": 8008, "x_forwarded": True,
             "resources": ["client", "federation", "keys", "media", "admin"]},
            {"bind_address": "0.0.0.0", "port": 9000, "resources": ["metrics"]},
        ]
        if env.get("SUP_NO_TLS") != "1" and role in ("all", "main", "federation_inbound"):
            cert, key = env.get("SUP_TLS_CERT"), env.get("SUP_TLS_KEY")
            if not (cert and key):
                cert, key = os.path.join(DATA, "tls", "federation.crt"), os.path.join(DATA, "tls", "federation.key")
                if not (os.path.exists(cert) and os.path.exists(key)):
                    self_signed(server_name, cert, key)
            listeners.append({"bind_address": "0.0.0.0", "port": 8448, "resources": ["federation", "keys"],
                              "tls_certificate": cert, "tls_private_key": key})
        env["SUP_LISTENERS"] = json.dumps(listeners)

    if "SUP_REGISTRATION__SHARED_SECRET" not in env and "SUP_CONFIG" not in env:
        path = os.path.join(DATA, "registration_shared_secret")
        if not os.path.exists(path):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
        with open(path, encoding="utf-8") as f:
            env["SUP_REGISTRATION__SHARED_SECRET"] = f.read().strip()

    try:
        with open("/tmp/sup-health-url", "w") as f:  # read by the image's HEALTHCHECK
            f.write(health)
    except OSError:
        pass
    for name in ENTRYPOINT_VARS:
        env.pop(name, None)
    sup = os.path.join(os.path.dirname(sys.executable), "sup")
    args = sys.argv[1:]
    if args:  # an explicit command: `podman run IMAGE backup /data/backup`, `... generate-config`
        os.execv(sup, [sup, *args])
    if not worker:
        os.execv(sup, [sup, "run", "--data-dir", DATA, "--server-name", server_name])
    # the main process of a multi-process deployment runs as `sup worker main` (it reads the deployment file)
    os.execv(sup, [sup, "worker", role, "--data-dir", DATA])


def _worker_health_url(env: os._Environ[str]) -> str:
    """The worker's own listener from the deployment file, else its metrics listener."""
    try:
        import yaml

        with open(env.get("SUP_DEPLOYMENT", ""), encoding="utf-8") as f:
            deployment = yaml.safe_load(f) or {}
        instance = deployment.get("instances", {}).get(env.get("SUP_INSTANCE") or env.get("SUP_ROLE", ""), {})
        listen = instance.get("listen")
        if isinstance(listen, str) and ":" in listen:
            return f"http://127.0.0.1:{listen.rsplit(':', 1)[1]}/health"
    except (OSError, ValueError, AttributeError):
        pass
    return "http://127.0.0.1:9000/metrics"


if __name__ == "__main__":
    main()
