"""The keyring: other servers' verify keys, fetched, verified, cached and persisted; signature checks in bulk.

Offers:
- ``await get_keys({server: {key_id: min_valid_until_ts}})`` → ``{server: {key_id: KeyInfo}}`` (only keys that
  satisfy the request). Looks in memory, then the ``server_verify_keys`` table, then fetches: the server's own
  ``/_matrix/key/v2/server`` first, then each configured trusted key server's ``/_matrix/key/v2/query``. Fetches
  are deduplicated (one in flight per server, concurrent callers share it) and batched (one call for many keys).
- ``await verify_json(server, signed, min_valid_ts)`` — request authentication (X-Matrix) and similar.
- ``await verify_events([(room_version, pdu), ...])`` → a list, per event, of ``None`` (signatures good) or the
  exception saying why not. Keys are fetched in one batch, and the ed25519 checks run on a thread pool (PyNaCl
  releases the GIL) so a busy room cannot stall the reactor.
- ``await notary_query({server: {key_id: min_valid}})`` → the ``server_keys`` list for ``/_matrix/key/v2/query``.

Rules: responses must be signed by the server's own listed verify key(s); ``valid_until_ts`` is capped at
7 days ahead (room versions 5+ require it); keys from ``old_verify_keys`` are kept with their ``expired_ts``
as the end of their validity. For room versions 1–4 key validity is not enforced.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Iterable, Protocol

from prometheus_client import Counter
from signedjson.key import decode_verify_key_bytes, encode_verify_key_base64, get_verify_key
from signedjson.sign import SignatureVerifyException, sign_json, verify_signed_json
from twisted.internet import defer, threads
from twisted.python.threadpool import ThreadPool
from unpaddedbase64 import decode_base64

from federation.transport.errors import FederationError
from homeserver.events.room_versions import RoomVersion, get_room_version
from homeserver.events.signing import required_signature_servers, verify_event_signatures
from homeserver.http.routes import KEY_V2
from homeserver.signing_key import key_id as own_key_id
from storage.stores.server_keys import ServerKeyStore, StoredVerifyKey

logger = logging.getLogger(__name__)

KEY_FETCHES = Counter("sup_federation_key_fetches_total", "Remote key fetches by source and outcome.", ["source", "outcome"])
SIG_CHECKS = Counter("sup_federation_event_signature_checks_total", "Event signature checks by outcome.", ["outcome"])

MAX_VALIDITY_MS = 7 * 24 * 3600 * 1000
REFETCH_INTERVAL_MS = 30_000  # do not ask the same server again sooner when it did not have the key
KEY_RESPONSE_MAX = 512 * 1024
VERIFY_CHUNK = 64


class KeyLookupError(Exception):
    """No usable key for a signature (unknown, expired for the use, or the server is unreachable)."""


class KeyVerifyError(Exception):
    """A signature did not verify."""


@dataclass(frozen=True)
class KeyInfo:
    verify_key: Any
    valid_until_ts: int


class KeyFetchClient(Protocol):
    async def get_json(self, destination: str, path: str, args: dict[str, Any] | None = None, **kw: Any) -> Any: ...

    async def post_json(self, destination: str, path: str, body: Any, args: dict[str, Any] | None = None, **kw: Any) -> Any: ...


def _room_version(rv: RoomVersion | str) -> RoomVersion:
    return rv if isinstance(rv, RoomVersion) else get_room_version(rv)


def enforces_key_validity(rv: RoomVersion) -> bool:
    return rv.identifier not in ("1", "2", "3", "4")


def parse_key_response(server: str, resp: Any, now_ms: int) -> list[StoredVerifyKey]:
    """Validate one ``/_matrix/key/v2/server``-shaped answer for ``server``; its keys to store. Raises ValueError."""
    if not isinstance(resp, dict) or resp.get("server_name") != server:
        raise ValueError("key response is for another server")
    valid_until = resp.get("valid_until_ts")
    verify_keys = resp.get("verify_keys")
    if isinstance(valid_until, bool) or not isinstance(valid_until, int) or not isinstance(verify_keys, dict):
        raise ValueError("key response lacks valid_until_ts or verify_keys")
    decoded: dict[str, Any] = {}
    for kid, info in verify_keys.items():
        decoded[kid] = _decode_key(kid, info)
    sigs = (resp.get("signatures") or {}).get(server) if isinstance(resp.get("signatures"), dict) else None
    if not isinstance(sigs, dict):
        raise ValueError("key response is not signed by its server")
    signed_by = [kid for kid in sigs if kid in decoded]
    if not signed_by:
        raise ValueError("key response is not signed by any of its verify keys")
    for kid in signed_by:
        try:
            verify_signed_json(resp, server, decoded[kid])
        except SignatureVerifyException as e:
            raise ValueError(f"bad self-signature by {kid}") from e
    raw = json.dumps(resp, ensure_ascii=False, separators=(",", ":"))
    until = min(valid_until, now_ms + MAX_VALIDITY_MS)
    out = [StoredVerifyKey(server, kid, encode_verify_key_base64(key), until, None, now_ms, raw) for kid, key in decoded.items()]
    old = resp.get("old_verify_keys")
    if isinstance(old, dict):
        for kid, info in old.items():
            if kid in decoded or not isinstance(info, dict):
                continue
            expired = info.get("expired_ts")
            if isinstance(expired, bool) or not isinstance(expired, int):
                continue
            try:
                key = _decode_key(kid, info)
            except ValueError:
                continue
            out.append(StoredVerifyKey(server, kid, encode_verify_key_base64(key), expired, expired, now_ms, raw))
    return out


def _decode_key(kid: str, info: Any) -> Any:
    if not isinstance(kid, str) or not kid.startswith("ed25519:") or not isinstance(info, dict) or not isinstance(info.get("key"), str):
        raise ValueError(f"bad verify key {kid!r}")
    try:
        return decode_verify_key_bytes(kid, decode_base64(info["key"]))
    except Exception as e:
        raise ValueError(f"bad verify key {kid!r}: {e}") from None


class Keyring:
    def __init__(
        self,
        reactor: Any,
        clock: Any,
        store: ServerKeyStore,
        client: KeyFetchClient | None,
        server_name: str,
        signing_key: Any,
        old_keys: dict[str, dict[str, Any]] | None = None,
        trusted_key_servers: list[dict[str, Any]] | None = None,
        own_keys_json: Any = None,
        verify_threads: int = 2,
    ) -> None:
        self._reactor = reactor
        self._clock = clock
        self._store = store
        self.client = client
        self._server_name = server_name
        self._own_keys_json = own_keys_json  # callable → our signed /key/v2/server answer
        self._signing_key = signing_key
        self._mem: dict[str, dict[str, KeyInfo]] = {}
        self._loaded: set[str] = set()
        self._inflight: dict[str, defer.Deferred[None]] = {}
        self._last_fetch: dict[str, int] = {}
        self._trusted = list(trusted_key_servers or [])
        own: dict[str, KeyInfo] = {own_key_id(signing_key): KeyInfo(get_verify_key(signing_key), 2**62)}
        for kid, info in (old_keys or {}).items():
            try:
                own[kid] = KeyInfo(_decode_key(kid, info), int(info["expired_ts"]))
            except (ValueError, KeyError, TypeError):
                logger.warning("ignoring bad old signing key %s", kid)
        self._mem[server_name] = own
        self._loaded.add(server_name)
        self._pool = ThreadPool(minthreads=1, maxthreads=max(1, verify_threads), name="sup-sigverify")
        self._pool_started = False

    # ---- lifecycle ----
    def start(self) -> None:
        if not self._pool_started:
            self._pool.start()
            self._pool_started = True

    def stop(self) -> None:
        if self._pool_started:
            self._pool.stop()
            self._pool_started = False

    # ---- lookups ----
    async def get_keys(self, wanted: dict[str, dict[str, int]]) -> dict[str, dict[str, KeyInfo]]:
        await self._load(wanted.keys())
        missing = [s for s, kids in wanted.items() if not self._satisfied(s, kids)]
        if missing:
            await defer.gatherResults([defer.Deferred.fromCoroutine(self._fetch_deduped(s, wanted[s])) for s in missing], consumeErrors=True)
        out: dict[str, dict[str, KeyInfo]] = {}
        for server, kids in wanted.items():
            have = self._mem.get(server, {})
            out[server] = {kid: have[kid] for kid, min_valid in kids.items() if kid in have and have[kid].valid_until_ts >= min_valid}
        return out

    def _satisfied(self, server: str, kids: dict[str, int]) -> bool:
        have = self._mem.get(server, {})
        return all(kid in have and have[kid].valid_until_ts >= v for kid, v in kids.items())

    async def _load(self, servers: Iterable[str]) -> None:
        todo = [s for s in servers if s not in self._loaded]
        if not todo:
            return
        for k in await self._store.get_keys(todo):
            self._remember(k)
        self._loaded.update(todo)

    def _remember(self, k: StoredVerifyKey) -> None:
        try:
            key = decode_verify_key_bytes(k.key_id, decode_base64(k.verify_key))
        except Exception:
            return
        have = self._mem.setdefault(k.server_name, {})
        old = have.get(k.key_id)
        if old is None or k.expired_ts is not None or old.valid_until_ts <= k.valid_until_ts:
            have[k.key_id] = KeyInfo(key, k.valid_until_ts)

    async def _fetch_deduped(self, server: str, kids: dict[str, int]) -> None:
        existing = self._inflight.get(server)
        if existing is not None:
            waiter: defer.Deferred[None] = defer.Deferred()
            existing.addBoth(lambda r: (waiter.callback(None), r)[1])
            await waiter
            if self._satisfied(server, kids):
                return
        now = self._clock.time_msec()
        if now - self._last_fetch.get(server, -REFETCH_INTERVAL_MS) < REFETCH_INTERVAL_MS and self._inflight.get(server) is None:
            return
        d: defer.Deferred[None] = defer.Deferred.fromCoroutine(self._fetch(server, kids))
        self._inflight[server] = d
        self._last_fetch[server] = now
        try:
            await d
        finally:
            if self._inflight.get(server) is d:
                del self._inflight[server]

    async def _fetch(self, server: str, kids: dict[str, int]) -> None:
        if self.client is None or server == self._server_name:
            return
        try:
            resp = await self.client.get_json(server, KEY_V2 + "/server", timeout_s=15, max_response=KEY_RESPONSE_MAX)
            await self._accept(server, resp)
            KEY_FETCHES.labels("direct", "ok").inc()
        except (FederationError, ValueError) as e:
            KEY_FETCHES.labels("direct", "error").inc()
            logger.info("fetching keys of %s failed: %s", server, e)
        if self._satisfied(server, kids):
            return
        for notary in self._trusted:
            if await self._fetch_from_notary(notary, server, kids):
                return

    async def _accept(self, server: str, resp: Any) -> None:
        keys = parse_key_response(server, resp, self._clock.time_msec())
        await self._store.store_keys(keys)
        for k in keys:
            self._remember(k)

    async def _fetch_from_notary(self, notary: dict[str, Any], server: str, kids: dict[str, int]) -> bool:
        name = notary["server_name"]
        body = {"server_keys": {server: {kid: {"minimum_valid_until_ts": v} for kid, v in kids.items()}}}
        try:
            resp = await self.client.post_json(name, KEY_V2 + "/query", body, timeout_s=15, max_response=KEY_RESPONSE_MAX * 4)  # type: ignore[union-attr]
            answers = resp.get("server_keys") if isinstance(resp, dict) else None
            if not isinstance(answers, list):
                raise ValueError("notary answer has no server_keys list")
            notary_keys = {kid: _decode_key(kid, {"key": k}) for kid, k in (notary.get("verify_keys") or {}).items()}
            for answer in answers:
                if not isinstance(answer, dict) or answer.get("server_name") != server:
                    continue
                if notary_keys and not any(self._notary_signed(answer, name, kid, key) for kid, key in notary_keys.items()):
                    raise ValueError("notary answer not signed by the configured notary key")
                await self._accept(server, answer)
            KEY_FETCHES.labels("notary", "ok").inc()
        except (FederationError, ValueError) as e:
            KEY_FETCHES.labels("notary", "error").inc()
            logger.info("fetching keys of %s from notary %s failed: %s", server, name, e)
        return self._satisfied(server, kids)

    @staticmethod
    def _notary_signed(answer: dict[str, Any], notary: str, kid: str, key: Any) -> bool:
        if kid not in ((answer.get("signatures") or {}).get(notary) or {}):
            return False
        try:
            verify_signed_json(answer, notary, key)
            return True
        except SignatureVerifyException:
            return False

    # ---- verification ----
    async def verify_json(self, server: str, signed: dict[str, Any], min_valid_ts: int) -> None:
        """Raise KeyLookupError / KeyVerifyError unless one of ``server``'s ed25519 signatures on ``signed`` verifies."""
        sigs = (signed.get("signatures") or {}).get(server)
        kids = [k for k in sigs if isinstance(k, str) and k.startswith("ed25519:")] if isinstance(sigs, dict) else []
        if not kids:
            raise KeyVerifyError(f"not signed by {server}")
        keys = (await self.get_keys({server: {kid: min_valid_ts for kid in kids}})).get(server, {})
        if not keys:
            raise KeyLookupError(f"no valid verify key of {server} for {', '.join(kids)}")
        for kid, info in keys.items():
            try:
                verify_signed_json(signed, server, info.verify_key)
                return
            except SignatureVerifyException:
                continue
        raise KeyVerifyError(f"signature of {server} does not verify")

    async def verify_events(self, batch: list[tuple[RoomVersion | str, dict[str, Any]]]) -> list[Exception | None]:
        """Per event: None when every required server's signature verifies, else the reason."""
        results: list[Exception | None] = [None] * len(batch)
        plans: list[tuple[int, RoomVersion, dict[str, Any], dict[str, int], int]] = []
        wanted: dict[str, dict[str, int]] = {}
        for i, (rv_in, pdu) in enumerate(batch):
            try:
                rv = _room_version(rv_in)
                servers = required_signature_servers(pdu, rv)
                min_valid = pdu.get("origin_server_ts", 0) if enforces_key_validity(rv) else 0
                if isinstance(min_valid, bool) or not isinstance(min_valid, int):
                    raise ValueError("origin_server_ts must be an integer")
                sigs = pdu.get("signatures")
                per_server: dict[str, int] = {}
                for server in servers:
                    server_sigs = sigs.get(server) if isinstance(sigs, dict) else None
                    for kid in (server_sigs if isinstance(server_sigs, dict) else {}):
                        if isinstance(kid, str) and kid.startswith("ed25519:"):
                            wanted.setdefault(server, {})
                            wanted[server][kid] = max(wanted[server].get(kid, 0), min_valid)
                    per_server[server] = min_valid
                plans.append((i, rv, pdu, per_server, min_valid))
            except Exception as e:  # malformed event: its own failure, never the batch's
                results[i] = e
        if not plans:
            return results
        if wanted:
            await self.get_keys(wanted)
        # the lookup answered only keys valid for the strictest event; recover per-event validity from memory
        all_keys = {s: dict(self._mem.get(s, {})) for s in wanted}

        def check_chunk(chunk: list[tuple[int, RoomVersion, dict[str, Any], dict[str, int], int]]) -> list[tuple[int, Exception | None]]:
            out: list[tuple[int, Exception | None]] = []
            for i, rv, pdu, per_server, min_valid in chunk:
                vk = {s: {kid: info.verify_key for kid, info in all_keys.get(s, {}).items() if info.valid_until_ts >= min_valid} for s in per_server}
                try:
                    verify_event_signatures(pdu, rv, vk)
                    out.append((i, None))
                except Exception as e:
                    out.append((i, e))
            return out

        self.start()
        chunks = [plans[n:n + VERIFY_CHUNK] for n in range(0, len(plans), VERIFY_CHUNK)]
        done = await defer.gatherResults(
            [threads.deferToThreadPool(self._reactor, self._pool, check_chunk, c) for c in chunks], consumeErrors=True
        )
        for part in done:
            for i, err in part:
                results[i] = err
                SIG_CHECKS.labels("ok" if err is None else "bad").inc()
        return results

    # ---- notary ----
    async def notary_query(self, wanted: dict[str, dict[str, int]], min_valid_any: int = 0) -> list[dict[str, Any]]:
        """Signed key answers for ``/_matrix/key/v2/query``: each server's own answer plus our signature.

        A server with no key ids asks for all its keys (refetched when none is valid until ``min_valid_any``)."""
        out: list[dict[str, Any]] = []
        remote = {s: kids for s, kids in wanted.items() if s != self._server_name}
        if self._server_name in wanted and self._own_keys_json is not None:
            out.append(self._own_keys_json())
        if remote:
            await self._load(remote.keys())
            await self.get_keys({s: kids for s, kids in remote.items() if kids})
            for s, kids in remote.items():
                if not kids and not any(i.valid_until_ts >= max(min_valid_any, 1) for i in self._mem.get(s, {}).values()):
                    await self._fetch_deduped(s, {})
            stored = await self._store.get_keys(remote.keys())
            seen: set[str] = set()
            for k in stored:
                kids = remote.get(k.server_name, {})
                if kids and k.key_id not in kids:
                    continue
                if k.response_json in seen:
                    continue
                seen.add(k.response_json)
                try:
                    doc = json.loads(k.response_json)
                except ValueError:
                    continue
                out.append(sign_json(doc, self._server_name, self._signing_key))
        return out
