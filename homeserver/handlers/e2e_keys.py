"""The end-to-end key directory: /keys/upload, /keys/query, /keys/claim, /keys/changes and device hooks."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from signedjson.key import decode_verify_key_bytes
from signedjson.sign import SignatureVerifyException, verify_signed_json
from unpaddedbase64 import decode_base64

from homeserver.api.errors import BadJson, Codes, Forbidden, InvalidParam, MatrixError
from homeserver.api.models.keys import KeysClaimBody, KeysQueryBody, KeysUploadBody
from homeserver.clock import Clock
from homeserver.handlers.device_lists import DeviceListHandler
from homeserver.types.caches import LruCache, drop_key, key_part
from homeserver.types.requester import Requester
from storage.database import Database, Txn
from storage.stores.dehydrated_devices import DehydratedDeviceStore
from storage.stores.e2e_keys import E2EKeyStore, OneTimeKeyConflict
from storage.stores.to_device import ToDeviceStore

logger = logging.getLogger(__name__)

# Algorithm names: namespaced identifiers such as signed_curve25519 or m.megolm.v1.aes-sha2.
_ALGORITHM_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")
_KEY_ID_RE = re.compile(r"^[A-Za-z0-9_.\-+/=]{1,255}$")
MAX_KEYS_PER_UPLOAD = 1000
KEY_COUNT_CACHE_SIZE = 100_000  # devices whose key counts /sync keeps in memory


class InvalidSignature(MatrixError):
    def __init__(self, msg: str = "Invalid signature") -> None:
        super().__init__(400, Codes.INVALID_SIGNATURE, msg)


def split_key_id(full: Any, what: str) -> tuple[str, str]:
    """``algorithm:key_id`` -> (algorithm, key_id), 400 M_INVALID_PARAM when malformed."""
    if not isinstance(full, str) or full.count(":") < 1:
        raise InvalidParam(f"Malformed {what} {full!r}: expected 'algorithm:key_id'")
    algorithm, key_id = full.split(":", 1)
    if not _ALGORITHM_RE.match(algorithm) or not key_id or len(key_id) > 255:
        raise InvalidParam(f"Malformed {what} {full!r}: invalid algorithm or key id")
    return algorithm, key_id


def check_algorithm(value: Any) -> str:
    if not isinstance(value, str) or not _ALGORITHM_RE.match(value):
        raise InvalidParam(f"Malformed algorithm {value!r}")
    return value


def verify_ed25519(obj: dict[str, Any], signer_user: str, key_name: str, public_key_b64: str) -> bool:
    """Does ``obj`` carry a valid signature by ``signer_user`` with ed25519 key ``key_name`` (without the ``ed25519:`` prefix)?"""
    try:
        verify_key = decode_verify_key_bytes("ed25519:" + key_name, decode_base64(public_key_b64))
        verify_signed_json(obj, signer_user, verify_key)
        return True
    except (SignatureVerifyException, ValueError, TypeError, KeyError, Exception):  # noqa: BLE001 - malformed key or signature: does not verify
        return False


def validate_device_keys(keys: Any, user_id: str, device_id: str) -> dict[str, Any]:
    if not isinstance(keys, dict):
        raise BadJson("'device_keys' must be an object")
    if keys.get("user_id") != user_id:
        raise Forbidden("device_keys.user_id does not match the authenticated user")
    if keys.get("device_id") != device_id:
        raise Forbidden("device_keys.device_id does not match the authenticated device")
    algorithms = keys.get("algorithms")
    if not isinstance(algorithms, list) or not algorithms:
        raise InvalidParam("device_keys.algorithms must be a non-empty list")
    for a in algorithms:
        check_algorithm(a)
    key_map = keys.get("keys")
    if not isinstance(key_map, dict) or not key_map:
        raise InvalidParam("device_keys.keys must be a non-empty object")
    for key_id, value in key_map.items():
        split_key_id(key_id, "key id")
        if not isinstance(value, str):
            raise InvalidParam(f"device_keys.keys[{key_id!r}] must be a string")
    ed_key = key_map.get(f"ed25519:{device_id}")
    if not isinstance(ed_key, str):
        raise InvalidParam(f"device_keys.keys must contain ed25519:{device_id}")
    signatures = keys.get("signatures")
    if not isinstance(signatures, dict) or not isinstance(signatures.get(user_id), dict):
        raise InvalidSignature("device_keys must be signed by the device")
    if not verify_ed25519(keys, user_id, device_id, ed_key):
        raise InvalidSignature("The device keys' self-signature does not verify")
    return keys


def _comparable(keys: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in keys.items() if k not in ("signatures", "unsigned")}


def parse_key_map(value: Any, what: str, ed_key: str | None, user_id: str, device_id: str) -> list[tuple[str, str, Any]]:
    """Validate one_time_keys / fallback_keys: {"alg:id": "key" | {"key": ..., "signatures": ...}}."""
    if not isinstance(value, dict):
        raise BadJson(f"'{what}' must be an object")
    if len(value) > MAX_KEYS_PER_UPLOAD:
        raise InvalidParam(f"Too many keys in '{what}' (at most {MAX_KEYS_PER_UPLOAD})")
    out: list[tuple[str, str, Any]] = []
    for full_id, key in value.items():
        algorithm, key_id = split_key_id(full_id, f"{what} key id")
        if isinstance(key, str):
            if algorithm.startswith("signed_"):
                raise InvalidParam(f"{what}[{full_id!r}]: a signed key must be an object with 'key' and 'signatures'")
        elif isinstance(key, dict):
            if not isinstance(key.get("key"), str):
                raise InvalidParam(f"{what}[{full_id!r}].key must be a string")
            signed = key.get("signatures") is not None or algorithm.startswith("signed_")
            if signed and ed_key is not None and not verify_ed25519(key, user_id, device_id, ed_key):
                raise InvalidSignature(f"The signature on {what}[{full_id!r}] does not verify")
        else:
            raise InvalidParam(f"{what}[{full_id!r}] must be a string or an object")
        out.append((algorithm, key_id, key))
    return out


class RemoteKeys(Protocol):
    """Federation fills this in (/_matrix/federation/v1/user/keys/query and /claim)."""

    async def query(self, destination: str, device_keys: dict[str, list[str]], timeout_ms: int) -> dict[str, Any]: ...

    async def claim(self, destination: str, one_time_keys: dict[str, dict[str, str]], timeout_ms: int) -> dict[str, Any]: ...


class NoFederationKeys:
    async def query(self, destination: str, device_keys: dict[str, list[str]], timeout_ms: int) -> dict[str, Any]:
        raise MatrixError(503, Codes.UNKNOWN, "Federation is not available")

    async def claim(self, destination: str, one_time_keys: dict[str, dict[str, str]], timeout_ms: int) -> dict[str, Any]:
        raise MatrixError(503, Codes.UNKNOWN, "Federation is not available")


def _failure(e: Exception) -> dict[str, Any]:
    if isinstance(e, MatrixError):
        return {"status": e.status, "errcode": e.errcode, "message": e.msg}
    return {"status": 503, "message": "Remote server unavailable"}


async def _from_remotes(ask: Callable[[str, Any, int], Awaitable[dict[str, Any]]], remote: dict[str, dict[str, Any]],
                        timeout: int, result: dict[str, Any], sections: tuple[str, ...]) -> None:
    """Ask each destination about its users (``ask(destination, users, timeout_ms)``, at most a minute) and copy
    ``sections`` of its answer into ``result`` for the users asked about only; a server that fails is reported in
    ``result["failures"]``, never a 500."""
    for destination, users in remote.items():
        try:
            answer = await ask(destination, users, max(0, min(timeout, 60_000)))
        except Exception as e:  # noqa: BLE001 - a remote server's failure is reported per server, never a 500
            result["failures"][destination] = _failure(e)
            continue
        for section in sections:
            for uid, value in (answer.get(section) or {}).items():
                if uid in users:
                    result[section][uid] = value


class E2EKeysHandler:
    def __init__(
        self,
        db: Database,
        store: E2EKeyStore,
        device_lists: DeviceListHandler,
        clock: Clock,
        server_name: str,
        remote: RemoteKeys | None = None,
        token_to_position: Callable[[str], int] | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.device_lists = device_lists
        self.clock = clock
        self.server_name = server_name
        self.remote: RemoteKeys = remote or NoFederationKeys()
        self.token_to_position = token_to_position
        # (user, device) -> (one-time-key counts, unused fallback key types), for /sync. Dropped after every
        # committed upload, claim, device creation or deletion in this process (the only writers).
        self._key_counts = LruCache("e2e_key_counts", KEY_COUNT_CACHE_SIZE,
                                   invalidate_on={"device": drop_key, "user": key_part(0)})
        self._key_epoch = 0  # bumped by every invalidation: a read racing a write is not cached

    def keys_changed(self, user_id: str, device_id: str) -> None:
        """One-time or fallback keys of the device changed (call after the write committed)."""
        self._key_epoch += 1
        self._key_counts.invalidate((user_id, device_id))

    async def key_counts(self, user_id: str, device_id: str) -> tuple[dict[str, int], list[str]]:
        """(one-time-key counts by algorithm, unused fallback key types) for /sync; cached, no database
        round trip while nothing changed. Callers must not mutate the returned values."""
        key = (user_id, device_id)
        hit = self._key_counts.get_(key)
        if hit is not None:
            return hit
        epoch = self._key_epoch

        def fn(txn: Txn) -> tuple[dict[str, int], list[str]]:
            counts = dict(E2EKeyStore.count_one_time_keys_txn(txn, user_id, device_id))
            return counts, list(E2EKeyStore.unused_fallback_key_types_txn(txn, user_id, device_id))

        counts, fallback = await self.db.run("sync_e2e_key_counts", fn)
        counts.setdefault("signed_curve25519", 0)
        value = (counts, fallback)
        if epoch == self._key_epoch:
            self._key_counts.put(key, value)
        return value

    def _is_local(self, user_id: str) -> bool:
        return user_id.endswith(":" + self.server_name)

    # ---- /keys/upload ----
    async def upload(self, requester: Requester, body: KeysUploadBody, device_id: str | None = None) -> dict[str, Any]:
        user_id = requester.user_id
        device_id = device_id or requester.device_id
        if not device_id:
            raise MatrixError(400, Codes.UNKNOWN, "Keys can only be uploaded by a device (this access token has none)")
        device_keys = body.device_keys
        existing = await self.store.get_device_keys(user_id, device_id)
        ed_key: str | None = None
        new_device_keys = None
        if device_keys is not None:
            validate_device_keys(device_keys, user_id, device_id)
            if existing is not None and _comparable(existing) != _comparable(device_keys):
                raise InvalidParam("This device already has different keys; delete the device to use new keys")
            if existing is None:
                new_device_keys = device_keys
            ed_key = device_keys["keys"][f"ed25519:{device_id}"]
        elif existing is not None:
            ed_key = existing.get("keys", {}).get(f"ed25519:{device_id}")
        otks = parse_key_map(body.one_time_keys, "one_time_keys", ed_key, user_id, device_id) if body.one_time_keys is not None else []
        fallbacks = parse_key_map(body.fallback_keys, "fallback_keys", ed_key, user_id, device_id) if body.fallback_keys is not None else []
        if body.unstable_fallback_keys is not None and not fallbacks:
            fallbacks = parse_key_map(body.unstable_fallback_keys, "fallback_keys", ed_key, user_id, device_id)
        seen_algs: set[str] = set()
        for algorithm, _, _ in fallbacks:
            if algorithm in seen_algs:
                raise InvalidParam(f"Only one fallback key per algorithm may be uploaded ({algorithm})")
            seen_algs.add(algorithm)
        now = self.clock.time_msec()

        def write(txn: Txn) -> dict[str, int]:
            if new_device_keys is not None:
                current = E2EKeyStore.get_device_keys_txn(txn, user_id, device_id)
                if current is not None and _comparable(current) != _comparable(new_device_keys):
                    raise InvalidParam("This device already has different keys; delete the device to use new keys")
                if current is None:
                    E2EKeyStore.set_device_keys_txn(txn, user_id, device_id, new_device_keys, now)
            if otks:
                seq = E2EKeyStore.next_upload_seq_txn(txn, user_id, device_id)
                E2EKeyStore.add_one_time_keys_txn(txn, user_id, device_id, otks, seq, now)
            for algorithm, key_id, key in fallbacks:
                E2EKeyStore.set_fallback_key_txn(txn, user_id, device_id, algorithm, key_id, key)
            return E2EKeyStore.count_one_time_keys_txn(txn, user_id, device_id)

        try:
            if new_device_keys is not None:
                counts = await self.device_lists.write_with_change("e2e_upload_keys", user_id, write, device_id=device_id)
            else:
                counts = await self.db.run("e2e_upload_keys", write)
        except OneTimeKeyConflict as e:
            raise InvalidParam(f"One-time key {e.key_id} was already uploaded with different content") from None
        finally:
            if otks or fallbacks:
                self.keys_changed(user_id, device_id)
        counts.setdefault("signed_curve25519", 0)
        return {"one_time_key_counts": counts}

    # ---- /keys/query ----
    async def query(self, requester: Requester, body: KeysQueryBody) -> dict[str, Any]:
        wanted, timeout = body.device_keys, body.timeout
        result: dict[str, Any] = {"device_keys": {}, "failures": {}, "master_keys": {}, "self_signing_keys": {}, "user_signing_keys": {}}
        remote: dict[str, dict[str, list[str]]] = {}
        local: dict[str, list[str]] = {}
        for user_id, devices in wanted.items():  # user ids and device lists checked by KeysQueryBody
            if self._is_local(user_id):
                local[user_id] = devices
            else:
                remote.setdefault(user_id.split(":", 1)[1], {})[user_id] = devices
        if local:
            found = await self.db.run("e2e_query_keys", self._query_local_txn, requester.user_id, local)
            for section, values in found.items():
                result[section].update(values)
        await _from_remotes(self.remote.query, remote, timeout, result, ("device_keys", "master_keys", "self_signing_keys"))
        return result

    async def query_local(self, device_keys: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
        """Keys of local users for another server (``/_matrix/federation/v1/user/keys/query``)."""
        local = {u: d for u, d in device_keys.items() if self._is_local(u)}
        found = await self.db.run("e2e_query_keys_federation", self._query_local_txn, "", local)
        found.pop("user_signing_keys", None)
        return found

    async def claim_local(self, one_time_keys: dict[str, dict[str, str]]) -> dict[str, Any]:
        """One-time keys of local devices for another server (``/_matrix/federation/v1/user/keys/claim``)."""
        local = [(u, d, check_algorithm(a)) for u, devs in one_time_keys.items() if self._is_local(u) for d, a in devs.items()]
        if not local:
            return {}
        try:
            claimed, _ = await self.db.run("e2e_claim_keys_federation", self._claim_txn, local, self.clock.time_msec())
        finally:
            for user_id, device_id, _alg in local:
                self.keys_changed(user_id, device_id)
        return claimed

    async def devices_for_federation(self, user_id: str) -> dict[str, Any]:
        """``/_matrix/federation/v1/user/devices/{userId}``: devices with keys and names, cross-signing keys."""

        def fn(txn: Txn) -> dict[str, Any]:
            devices = []
            for device_id, (keys, display_name) in E2EKeyStore.query_devices_txn(txn, user_id, None).items():
                entry: dict[str, Any] = {"device_id": device_id, "keys": keys}
                if display_name is not None:
                    entry["device_display_name"] = display_name
                devices.append(entry)
            out: dict[str, Any] = {"user_id": user_id, "stream_id": self.device_lists.current_position(), "devices": devices}
            cross = E2EKeyStore.get_cross_signing_keys_txn(txn, user_id)
            if "master" in cross:
                out["master_key"] = cross["master"]
            if "self_signing" in cross:
                out["self_signing_key"] = cross["self_signing"]
            return out

        return await self.db.run("e2e_devices_federation", fn)

    def _query_local_txn(self, txn: Txn, requester_id: str, local: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {"device_keys": {}, "master_keys": {}, "self_signing_keys": {}, "user_signing_keys": {}}
        for user_id, devices in local.items():
            sigs = E2EKeyStore.get_signatures_txn(txn, user_id)
            per_device: dict[str, Any] = {}
            for device_id, (keys, display_name) in E2EKeyStore.query_devices_txn(txn, user_id, devices or None).items():
                keys = _with_signatures(keys, sigs.get(device_id, []), user_id, requester_id)
                unsigned = dict(keys.get("unsigned") or {})
                if display_name is not None:
                    unsigned["device_display_name"] = display_name
                keys["unsigned"] = unsigned
                per_device[device_id] = keys
            out["device_keys"][user_id] = per_device
            cross = E2EKeyStore.get_cross_signing_keys_txn(txn, user_id)
            for key_type, section in (("master", "master_keys"), ("self_signing", "self_signing_keys")):
                if key_type in cross:
                    pub = public_key_of(cross[key_type])
                    out[section][user_id] = _with_signatures(cross[key_type], sigs.get(pub or "", []), user_id, requester_id)
            if user_id == requester_id and "user_signing" in cross:
                out["user_signing_keys"][user_id] = cross["user_signing"]
        return out

    # ---- /keys/claim ----
    async def claim(self, requester: Requester, body: KeysClaimBody) -> dict[str, Any]:
        wanted, timeout = body.one_time_keys, body.timeout
        local: list[tuple[str, str, str]] = []
        remote: dict[str, dict[str, dict[str, str]]] = {}
        for user_id, devices in wanted.items():  # shapes and user ids checked by KeysClaimBody
            for device_id, algorithm in devices.items():
                check_algorithm(algorithm)
                if self._is_local(user_id):
                    local.append((user_id, device_id, algorithm))
                else:
                    remote.setdefault(user_id.split(":", 1)[1], {}).setdefault(user_id, {})[device_id] = algorithm
        result: dict[str, Any] = {"one_time_keys": {}, "failures": {}}
        if local:
            now = self.clock.time_msec()
            try:
                claimed, _fallback_used = await self.db.run("e2e_claim_keys", self._claim_txn, local, now)
            finally:
                for user_id, device_id, _alg in local:
                    self.keys_changed(user_id, device_id)
            result["one_time_keys"].update(claimed)
        await _from_remotes(self.remote.claim, remote, timeout, result, ("one_time_keys",))
        return result

    @staticmethod
    def _claim_txn(txn: Txn, local: list[tuple[str, str, str]], now: int) -> tuple[dict[str, Any], set[str]]:
        out: dict[str, Any] = {}
        fallback_used: set[str] = set()
        for user_id, device_id, algorithm in local:
            got = E2EKeyStore.claim_one_time_key_txn(txn, user_id, device_id, algorithm, now)
            if got is None:
                got = E2EKeyStore.claim_fallback_key_txn(txn, user_id, device_id, algorithm)
                if got is not None:
                    fallback_used.add(user_id)
            if got is not None:
                key_id, key = got
                out.setdefault(user_id, {}).setdefault(device_id, {})[f"{algorithm}:{key_id}"] = key
        return out, fallback_used

    # ---- /keys/changes ----
    async def key_changes(self, requester: Requester, from_token: str, to_token: str) -> dict[str, Any]:
        if self.token_to_position is None:
            raise MatrixError(400, Codes.UNKNOWN, "Sync tokens are not available on this server")
        since = self.token_to_position(from_token)
        until = self.token_to_position(to_token)
        until = min(until, self.device_lists.current_position())
        changed, left = await self.device_lists.get_device_list_changes(requester.user_id, since, until)
        return {"changed": sorted(changed), "left": sorted(left)}

    # ---- the API sync uses ----
    async def count_one_time_keys(self, user_id: str, device_id: str) -> dict[str, int]:
        counts = await self.db.run("e2e_count_otks", E2EKeyStore.count_one_time_keys_txn, user_id, device_id)
        counts.setdefault("signed_curve25519", 0)
        return counts

    async def unused_fallback_key_types(self, user_id: str, device_id: str) -> list[str]:
        return await self.db.run("e2e_unused_fallback", E2EKeyStore.unused_fallback_key_types_txn, user_id, device_id)

    async def get_device_list_changes(self, user_id: str, since_pos: int, until_pos: int) -> tuple[set[str], set[str]]:
        return await self.device_lists.get_device_list_changes(user_id, since_pos, until_pos)

    # ---- device hooks (registered with the accounts area) ----
    async def on_device_created(self, user_id: str, device_id: str, *_: Any) -> None:
        self.keys_changed(user_id, device_id)
        await self.device_lists.mark_changed(user_id, device_id)

    async def on_device_deleted(self, user_id: str, device_id: str, *_: Any) -> None:
        """Remove the device's keys, one-time and fallback keys and to-device inbox; record a device-list change."""

        def fn(txn: Txn) -> None:
            E2EKeyStore.delete_device_keys_txn(txn, user_id, device_id)
            ToDeviceStore.delete_device_inbox_txn(txn, user_id, device_id)
            DehydratedDeviceStore.delete_txn(txn, user_id, device_id)

        try:
            await self.device_lists.write_with_change("e2e_device_deleted", user_id, fn, device_id=device_id)
        finally:
            self.keys_changed(user_id, device_id)


def public_key_of(key: dict[str, Any]) -> str | None:
    keys = key.get("keys")
    if isinstance(keys, dict) and len(keys) == 1:
        (key_id, value), = keys.items()
        if isinstance(key_id, str) and key_id.startswith("ed25519:") and isinstance(value, str):
            return value
    return None


def _with_signatures(obj: dict[str, Any], extra: list[tuple[str, str, str]], owner: str, requester_id: str) -> dict[str, Any]:
    """Merge uploaded signatures into ``obj``; another user's signatures are only shown to that user."""
    out = dict(obj)
    sigs = {u: dict(v) for u, v in (obj.get("signatures") or {}).items() if isinstance(v, dict)}
    for signer_user, signer_key_id, signature in extra:
        if signer_user in (owner, requester_id):
            sigs.setdefault(signer_user, {})[signer_key_id] = signature
    if sigs:
        out["signatures"] = sigs
    return out
