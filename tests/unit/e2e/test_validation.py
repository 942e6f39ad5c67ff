"""Pure validation and rules of the E2E key service (no I/O)."""

from __future__ import annotations

import pytest
from signedjson.key import generate_signing_key, get_verify_key
from signedjson.sign import sign_json
from unpaddedbase64 import encode_base64

from homeserver.api.errors import MatrixError
from homeserver.handlers.e2e_keys import (
    _with_signatures,
    parse_key_map,
    split_key_id,
    validate_device_keys,
    verify_ed25519,
)
from homeserver.api.models.keys import KeyBackupData
from homeserver.handlers.key_backup import parse_version
from homeserver.http.models import parse_value
from storage.stores.key_backup import _new_is_better


def _device(user="@a:hs", device="DEV"):
    sk = generate_signing_key(device)
    pub = encode_base64(get_verify_key(sk).encode())
    keys = {"user_id": user, "device_id": device, "algorithms": ["m.olm.v1.curve25519-aes-sha2"],
            "keys": {f"ed25519:{device}": pub, f"curve25519:{device}": "c" * 43}}
    return sk, pub, sign_json(keys, user, sk)


@pytest.mark.parametrize("value", ["nocolon", ":id", "alg:", "bad alg:id", 5, None, "a" * 101 + ":x"])
def test_malformed_key_ids_are_invalid_param(value):
    with pytest.raises(MatrixError) as e:
        split_key_id(value, "key id")
    assert e.value.status == 400 and e.value.errcode == "M_INVALID_PARAM"


def test_key_id_split_keeps_colons_in_id():
    assert split_key_id("signed_curve25519:AAA:B", "x") == ("signed_curve25519", "AAA:B")


def test_device_keys_self_signature():
    _sk, _pub, keys = _device()
    assert validate_device_keys(keys, "@a:hs", "DEV") is keys
    tampered = dict(keys, algorithms=["m.megolm.v1.aes-sha2"])
    with pytest.raises(MatrixError) as e:
        validate_device_keys(tampered, "@a:hs", "DEV")
    assert e.value.errcode == "M_INVALID_SIGNATURE"
    with pytest.raises(MatrixError) as e:
        validate_device_keys(keys, "@b:hs", "DEV")
    assert e.value.status == 403
    with pytest.raises(MatrixError) as e:
        validate_device_keys(keys, "@a:hs", "OTHER")
    assert e.value.status == 403


def test_verify_rejects_garbage_keys():
    _, _, keys = _device()
    assert not verify_ed25519(keys, "@a:hs", "DEV", "not base64!!")
    assert not verify_ed25519(keys, "@a:hs", "DEV", encode_base64(b"short"))


def test_signed_one_time_keys_must_verify():
    sk, pub, _ = _device()
    good = sign_json({"key": "k1"}, "@a:hs", sk)
    assert parse_key_map({"signed_curve25519:1": good}, "one_time_keys", pub, "@a:hs", "DEV")[0][:2] == ("signed_curve25519", "1")
    with pytest.raises(MatrixError) as e:
        parse_key_map({"signed_curve25519:1": dict(good, key="k2")}, "one_time_keys", pub, "@a:hs", "DEV")
    assert e.value.errcode == "M_INVALID_SIGNATURE"
    with pytest.raises(MatrixError):
        parse_key_map({"signed_curve25519:1": "plain"}, "one_time_keys", pub, "@a:hs", "DEV")
    assert parse_key_map({"curve25519:1": "plain"}, "one_time_keys", pub, "@a:hs", "DEV") == [("curve25519", "1", "plain")]


def test_backup_replacement_rules():
    def new(v, fmi, fwd):
        return {"is_verified": v, "first_message_index": fmi, "forwarded_count": fwd}

    assert _new_is_better(new(True, 9, 9), 0, 0, False)  # verified beats unverified
    assert not _new_is_better(new(False, 0, 0), 9, 9, True)
    assert _new_is_better(new(False, 1, 9), 2, 0, False)  # then lower first_message_index
    assert not _new_is_better(new(False, 3, 0), 2, 9, False)
    assert _new_is_better(new(False, 2, 0), 2, 1, False)  # then lower forwarded_count
    assert not _new_is_better(new(False, 2, 1), 2, 1, False)  # equal: keep the existing key


def test_backup_input_validation():
    with pytest.raises(MatrixError) as e:
        parse_version("abc")
    assert e.value.status == 404
    for bad in ({}, {"first_message_index": -1, "forwarded_count": 0, "is_verified": False, "session_data": {}},
                {"first_message_index": 0, "forwarded_count": 0, "is_verified": "yes", "session_data": {}},
                {"first_message_index": True, "forwarded_count": 0, "is_verified": False, "session_data": {}}):
        with pytest.raises(MatrixError):
            parse_value(bad, KeyBackupData)


def test_other_users_signatures_only_visible_to_them():
    obj = {"keys": {}, "signatures": {"@a:hs": {"ed25519:DEV": "s0"}}}
    extra = [("@b:hs", "ed25519:usk", "s1"), ("@a:hs", "ed25519:ssk", "s2")]
    seen_by_c = _with_signatures(obj, extra, "@a:hs", "@c:hs")
    assert set(seen_by_c["signatures"]) == {"@a:hs"} and seen_by_c["signatures"]["@a:hs"]["ed25519:ssk"] == "s2"
    assert "@b:hs" in _with_signatures(obj, extra, "@a:hs", "@b:hs")["signatures"]
    assert obj["signatures"] == {"@a:hs": {"ed25519:DEV": "s0"}}  # not mutated
