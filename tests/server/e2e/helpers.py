"""A fake E2E device: real ed25519 keys (signedjson), signed device keys and one-time keys."""

from __future__ import annotations

import copy
import os
from typing import Any

from signedjson.key import generate_signing_key, get_verify_key
from signedjson.sign import sign_json
from unpaddedbase64 import encode_base64

from tests.harness import TestServer
from tests.server.accounts.helpers import login, register

V3 = "/_matrix/client/v3"


def b64_key() -> str:
    return encode_base64(os.urandom(32))


class FakeDevice:
    def __init__(self, user_id: str, device_id: str, token: str) -> None:
        self.user_id = user_id
        self.device_id = device_id
        self.token = token
        self.signing_key = generate_signing_key(device_id)
        self.ed25519 = encode_base64(get_verify_key(self.signing_key).encode())
        self.curve25519 = b64_key()

    def device_keys(self) -> dict[str, Any]:
        keys = {
            "user_id": self.user_id,
            "device_id": self.device_id,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {f"curve25519:{self.device_id}": self.curve25519, f"ed25519:{self.device_id}": self.ed25519},
        }
        return sign_json(keys, self.user_id, self.signing_key)

    def signed(self, obj: dict[str, Any]) -> dict[str, Any]:
        return sign_json(copy.deepcopy(obj), self.user_id, self.signing_key)

    def otks(self, ids: list[str], fallback: bool = False) -> dict[str, Any]:
        out = {}
        for key_id in ids:
            body: dict[str, Any] = {"key": b64_key()}
            if fallback:
                body["fallback"] = True
            out[f"signed_curve25519:{key_id}"] = self.signed(body)
        return out


def new_user(server: TestServer, name: str) -> FakeDevice:
    reg = register(server, name)
    return FakeDevice(reg["user_id"], reg["device_id"], reg["access_token"])


def second_device(server: TestServer, dev: FakeDevice) -> FakeDevice:
    info = login(server, dev.user_id)
    return FakeDevice(dev.user_id, info["device_id"], info["access_token"])


def upload(server: TestServer, dev: FakeDevice, body: dict[str, Any]) -> Any:
    return server.post(V3 + "/keys/upload", token=dev.token, json=body)
