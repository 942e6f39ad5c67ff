"""Cross-signing: /keys/device_signing/upload and /keys/signatures/upload."""

from __future__ import annotations

from typing import Any, Protocol

from homeserver.api.errors import Codes, Forbidden, InvalidParam, MatrixError
from homeserver.api.models.keys import DeviceSigningUploadBody, SignaturesUploadBody
from homeserver.clock import Clock
from homeserver.handlers.device_lists import DeviceListHandler
from homeserver.handlers.e2e_keys import (
    InvalidSignature,
    _comparable,
    public_key_of,
    verify_ed25519,
)
from homeserver.types.requester import Requester
from storage.database import Database, Txn
from storage.stores.e2e_keys import E2EKeyStore

KEY_TYPES = (("master_key", "master"), ("self_signing_key", "self_signing"), ("user_signing_key", "user_signing"))


class UIA(Protocol):
    async def check(self, body: dict[str, Any], description: str, requester: Requester | None = None) -> dict[str, Any]: ...


def _validate_cross_signing_key(key: dict[str, Any], field: str, usage: str, user_id: str) -> str:
    """What the key must say for this user (its JSON types were checked by ``DeviceSigningUploadBody``)."""
    if key["user_id"] != user_id:
        raise Forbidden(f"{field}.user_id does not match the authenticated user")
    if usage not in key["usage"]:
        raise InvalidParam(f"{field}.usage must contain {usage!r}")
    pub = public_key_of(key)
    if pub is None:
        raise InvalidParam(f"{field}.keys must hold exactly one ed25519 key")
    (key_id,) = key["keys"].keys()
    if key_id != f"ed25519:{pub}":
        raise InvalidParam(f"{field}: the key id must be ed25519:<public key>")
    return pub


def _signature_by(
    obj: dict[str, Any], signer: str, sigs: dict[str, Any], signer_cross: dict[str, Any], kind: str, label: str
) -> tuple[str, str, str]:
    """Verify ``obj``'s signature by the signer's own ``kind`` cross-signing key: (signer, key id, signature)."""
    key = signer_cross.get(kind)
    pub = public_key_of(key) if key else None
    if pub is None:
        raise MatrixError(400, Codes.MISSING_PARAM, f"No {label} key uploaded")
    signature = sigs[signer].get(f"ed25519:{pub}")
    if not isinstance(signature, str) or not verify_ed25519(obj, signer, pub, pub):
        raise MatrixError(400, Codes.INVALID_SIGNATURE, "Invalid signature")
    return signer, f"ed25519:{pub}", signature


class CrossSigningHandler:
    def __init__(self, db: Database, device_lists: DeviceListHandler, clock: Clock, ui_auth: UIA | None = None) -> None:
        self.db = db
        self.device_lists = device_lists
        self.clock = clock
        self.ui_auth = ui_auth

    async def upload_signing_keys(self, requester: Requester, body: DeviceSigningUploadBody) -> dict[str, Any]:
        user_id = requester.user_id
        new: dict[str, tuple[str, dict[str, Any]]] = {}
        for field, key_type in KEY_TYPES:
            key = getattr(body, field)
            if key is not None:
                new[key_type] = (_validate_cross_signing_key(key, field, key_type, user_id), key)
        if not new:
            raise MatrixError(400, Codes.MISSING_PARAM, "No cross-signing keys in the request")

        existing, device_ids = await self.db.run(
            "cross_signing_existing", lambda txn: (E2EKeyStore.get_cross_signing_keys_txn(txn, user_id), E2EKeyStore.device_ids_txn(txn, user_id))
        )
        for pub, _ in new.values():
            if pub in device_ids:
                raise Forbidden("Key ID in use: a device has this id")
        if "master" in existing and any(existing.get(t) != k for t, (_, k) in new.items()):
            if self.ui_auth is None:
                raise Forbidden("Replacing cross-signing keys needs user-interactive authentication, which is unavailable")
            await self.ui_auth.check(body.uia_body(), "replace cross-signing keys", requester=requester)
        if all(existing.get(t) == k for t, (_, k) in new.items()):
            return {}  # idempotent retry
        master = new["master"][1] if "master" in new else existing.get("master")
        if master is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "No master signing key is available")
        master_pub = public_key_of(master)
        assert master_pub is not None
        for key_type in ("self_signing", "user_signing"):
            if key_type in new and not verify_ed25519(new[key_type][1], user_id, master_pub, master_pub):
                raise InvalidSignature(f"The {key_type} key is not signed by the master key")
        now = self.clock.time_msec()

        def write(txn: Txn) -> None:
            for key_type, (pub, key) in new.items():
                E2EKeyStore.set_cross_signing_key_txn(txn, user_id, key_type, pub, key, now)

        await self.device_lists.write_with_change("cross_signing_upload", user_id, write, kind="signing_key")
        return {}

    async def upload_signatures(self, requester: Requester, body: SignaturesUploadBody) -> dict[str, Any]:
        signer = requester.user_id
        failures: dict[str, dict[str, Any]] = {}
        rows: list[tuple[str, str, str, str, str]] = []
        changed_users: set[str] = set()

        def fail(user_id: str, key_id: str, errcode: str, msg: str) -> None:
            failures.setdefault(user_id, {})[key_id] = {"errcode": errcode, "error": msg}

        for user_id, objs in body.root.items():
            for key_id, obj in objs.items():
                if not isinstance(obj, dict):
                    fail(user_id, key_id, Codes.BAD_JSON, "Expected a signed JSON object")
                    continue
                try:
                    found = await self.db.run("signatures_check", self._check_one_txn, signer, user_id, key_id, obj)
                except MatrixError as e:
                    fail(user_id, key_id, e.errcode, e.msg)
                    continue
                if found:
                    rows.extend(found)
                    changed_users.add(user_id)
        if rows:
            await self.db.run("signatures_store", E2EKeyStore.add_signatures_txn, rows)
            for user_id in changed_users:
                await self.device_lists.mark_changed(user_id)
        return {"failures": failures}

    @staticmethod
    def _check_one_txn(txn: Txn, signer: str, user_id: str, key_id: str, obj: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
        """Verify the signer's new signatures on one key; return rows to store (raises MatrixError for a failure)."""
        sigs = obj.get("signatures")
        if not isinstance(sigs, dict) or not isinstance(sigs.get(signer), dict) or not sigs[signer]:
            raise MatrixError(400, Codes.INVALID_SIGNATURE, "No signature by the uploading user")
        signer_cross = E2EKeyStore.get_cross_signing_keys_txn(txn, signer)
        target_cross = E2EKeyStore.get_cross_signing_keys_txn(txn, user_id) if user_id != signer else signer_cross
        master = target_cross.get("master")
        rows = []
        if user_id == signer and master is not None and key_id == public_key_of(master):
            # Our own master key, signed by one of our devices.
            if _comparable(obj) != _comparable(master):
                raise InvalidParam("The signed object does not match the stored master key")
            for sig_key_id, signature in sigs[signer].items():
                if not isinstance(sig_key_id, str) or not sig_key_id.startswith("ed25519:") or not isinstance(signature, str):
                    continue
                device_id = sig_key_id.split(":", 1)[1]
                device = E2EKeyStore.get_device_keys_txn(txn, signer, device_id)
                if device is None:
                    continue
                if not verify_ed25519(obj, signer, device_id, device["keys"].get(f"ed25519:{device_id}", "")):
                    raise MatrixError(400, Codes.INVALID_SIGNATURE, "Invalid signature")
                rows.append((user_id, key_id, signer, sig_key_id, signature))
        elif user_id == signer:
            # One of our devices, signed by our self-signing key.
            device = E2EKeyStore.get_device_keys_txn(txn, signer, key_id)
            if device is None:
                raise MatrixError(404, Codes.NOT_FOUND, "Unknown device")
            if _comparable(obj) != _comparable(device):
                raise InvalidParam("The signed object does not match the stored device keys")
            rows.append((user_id, key_id, *_signature_by(obj, signer, sigs, signer_cross, "self_signing", "self-signing")))
        else:
            # Another user's master key, signed by our user-signing key.
            if master is None or key_id != public_key_of(master):
                raise MatrixError(404, Codes.NOT_FOUND, "Unknown key (only master keys of other users can be signed)")
            if _comparable(obj) != _comparable(master):
                raise InvalidParam("The signed object does not match the stored master key")
            rows.append((user_id, key_id, *_signature_by(obj, signer, sigs, signer_cross, "user_signing", "user-signing")))
        return rows
