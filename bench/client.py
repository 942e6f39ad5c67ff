"""A minimal Matrix Client-Server API client on aiohttp, built for load.

Every request is bounded by a timeout; failures never raise out of ``call``:
they are counted in an :class:`ErrorLog` with the endpoint, the status and a
sample of the body, and the caller gets ``(status, body)`` back (status 0 for
a transport error or timeout).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import time
from collections import Counter
from typing import Any, Awaitable, Callable, TypeVar
from urllib.parse import quote

import aiohttp

try:  # faster JSON when present; the standard library otherwise
    import orjson

    def dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

    def loads(data: bytes) -> Any:
        return orjson.loads(data)

except ImportError:  # pragma: no cover - depends on the environment
    import json

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    def loads(data: bytes) -> Any:
        return json.loads(data)


CS = "/_matrix/client/v3"
T = TypeVar("T")


def q(s: str) -> str:
    """Quote one path segment (room ids, event types, txn ids)."""
    return quote(s, safe="")


class SetupError(Exception):
    """A step the scenario cannot go on without failed (already counted as an error)."""


class ErrorLog:
    """Counts failures by 'METHOD endpoint -> status errcode' and keeps a few samples."""

    def __init__(self, samples: int = 5) -> None:
        self.counts: Counter[str] = Counter()
        self.samples: dict[str, list[str]] = {}
        self._max_samples = samples

    def add(self, key: str, detail: str = "") -> None:
        self.counts[key] += 1
        lst = self.samples.setdefault(key, [])
        if len(lst) < self._max_samples and detail:
            lst.append(detail[:400])

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "by_kind": dict(self.counts), "samples": self.samples}


class User:
    __slots__ = ("user_id", "token", "device_id", "localpart", "_txn")

    def __init__(self, user_id: str, token: str, device_id: str | None, localpart: str) -> None:
        self.user_id = user_id
        self.token = token
        self.device_id = device_id
        self.localpart = localpart
        self._txn = itertools.count()

    def txn(self) -> str:
        return f"b{time.monotonic_ns()}_{next(self._txn)}"


class Matrix:
    """Shared connection pool and request helper for one benchmark run."""

    def __init__(self, base_url: str, pool_size: int = 256, request_timeout: float = 30.0) -> None:
        self.base = base_url.rstrip("/")
        self.pool_size = pool_size
        self.request_timeout = request_timeout
        self.session: aiohttp.ClientSession | None = None
        self.errors = ErrorLog()  # replaced per scenario by the runner
        self.requests = 0
        self.shared_secret: str | None = None
        self.passwordless_ok: bool | None = None  # learned on first setup registration
        self.open_registration_ok: bool | None = None
        self.media_download_prefix: str | None = None

    async def __aenter__(self) -> "Matrix":
        connector = aiohttp.TCPConnector(limit=self.pool_size, limit_per_host=self.pool_size, keepalive_timeout=60, ttl_dns_cache=None)
        self.session = aiohttp.ClientSession(connector=connector, auto_decompress=True, skip_auto_headers=("User-Agent",))
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self.session is not None:
            await self.session.close()

    async def call(
        self,
        method: str,
        path: str,
        *,
        label: str,
        token: str | None = None,
        body: Any = None,
        data: bytes | None = None,
        content_type: str | None = None,
        params: dict[str, str] | None = None,
        timeout: float | None = None,
        ok: tuple[int, ...] = (200,),
        raw: bool = False,
    ) -> tuple[int, Any, int]:
        """Send one request; return (status, parsed JSON or bytes, response size in bytes).

        A status outside ``ok`` is counted as an error under ``label``.
        """
        assert self.session is not None
        headers: dict[str, str] = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        payload: bytes | None = data
        if body is not None:
            payload = dumps(body)
            headers["Content-Type"] = "application/json"
        elif content_type:
            headers["Content-Type"] = content_type
        self.requests += 1
        t = aiohttp.ClientTimeout(total=timeout or self.request_timeout)
        try:
            async with self.session.request(method, self.base + path, data=payload, headers=headers, params=params, timeout=t) as resp:
                content = await resp.read()
                status = resp.status
        except asyncio.CancelledError:
            raise
        except asyncio.TimeoutError:
            self.errors.add(f"{method} {label} -> timeout")
            return 0, None, 0
        except (aiohttp.ClientError, OSError) as e:
            self.errors.add(f"{method} {label} -> {type(e).__name__}", str(e))
            return 0, None, 0
        parsed: Any = content
        if not raw:
            try:
                parsed = loads(content) if content else {}
            except ValueError:
                parsed = content
        if status not in ok:
            errcode = parsed.get("errcode", "") if isinstance(parsed, dict) else ""
            self.errors.add(f"{method} {label} -> {status} {errcode}".rstrip(), f"{method} {path}: {content[:300]!r}")
        return status, parsed, len(content)

    # --- registration ---------------------------------------------------

    async def register_open(self, localpart: str, password: str | None, label: str = "/register") -> User | None:
        """Open registration through the m.login.dummy User-Interactive Auth flow."""
        req: dict[str, Any] = {"username": localpart, "initial_device_display_name": "bench"}
        if password is not None:
            req["password"] = password
        status, body, _ = await self.call("POST", CS + "/register", label=label, body=req, ok=(200, 401))
        if status == 401 and isinstance(body, dict) and "session" in body:
            req["auth"] = {"type": "m.login.dummy", "session": body["session"]}
            status, body, _ = await self.call("POST", CS + "/register", label=label, body=req)
        if status == 200 and isinstance(body, dict) and "access_token" in body:
            return User(body["user_id"], body["access_token"], body.get("device_id"), localpart)
        if status == 200:
            self.errors.add(f"POST {label} -> 200 without access_token", repr(body)[:300])
        return None

    async def register_shared_secret(self, localpart: str, password: str, label: str = "/_synapse/admin/v1/register") -> User | None:
        """The Synapse-compatible admin registration: nonce + HMAC-SHA1 of the fields."""
        assert self.shared_secret is not None
        path = "/_synapse/admin/v1/register"
        status, body, _ = await self.call("GET", path, label=label + " (nonce)")
        if status != 200 or not isinstance(body, dict) or "nonce" not in body:
            return None
        nonce = body["nonce"]
        mac = hmac.new(self.shared_secret.encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join([nonce.encode(), localpart.encode(), password.encode(), b"notadmin"]))
        req = {"nonce": nonce, "username": localpart, "password": password, "admin": False, "mac": mac.hexdigest()}
        status, body, _ = await self.call("POST", path, label=label, body=req)
        if status == 200 and isinstance(body, dict) and "access_token" in body:
            return User(body["user_id"], body["access_token"], body.get("device_id"), localpart)
        return None

    async def setup_user(self, localpart: str) -> User | None:
        """A user for scenario setup, as cheaply as the server allows.

        Open registration without a password first (no password hash to
        compute); with a password if the server insists; the shared-secret
        endpoint when open registration is off.
        """
        if self.open_registration_ok is not False:
            if self.passwordless_ok is not False:
                probe = self.passwordless_ok is None
                saved = self.errors
                if probe:
                    self.errors = ErrorLog()  # a refused probe is not a benchmark error
                try:
                    user = await self.register_open(localpart, None, label="/register (setup)")
                finally:
                    probe_errors = self.errors
                    self.errors = saved
                if user is not None:
                    self.passwordless_ok = True
                    self.open_registration_ok = True
                    return user
                if not probe:
                    return None
                self.passwordless_ok = False
                if any(" 403" in k for k in probe_errors.counts) and self.shared_secret:
                    self.open_registration_ok = False
            if self.open_registration_ok is not False:
                user = await self.register_open(localpart, "bench-Pass-1", label="/register (setup)")
                if user is not None:
                    self.open_registration_ok = True
                    return user
                if self.open_registration_ok is None and self.shared_secret:
                    self.open_registration_ok = False
                else:
                    return None
        if self.shared_secret:
            return await self.register_shared_secret(localpart, "bench-Pass-1", label="/_synapse/admin/v1/register (setup)")
        return None

    # --- rooms ------------------------------------------------------------

    async def create_room(self, user: User, preset: str = "public_chat", name: str | None = None, label: str = "/createRoom") -> str | None:
        req: dict[str, Any] = {"preset": preset}
        if name:
            req["name"] = name
        status, body, _ = await self.call("POST", CS + "/createRoom", label=label, token=user.token, body=req)
        if status == 200 and isinstance(body, dict) and "room_id" in body:
            return str(body["room_id"])
        return None

    async def join(self, user: User, room_id: str, label: str = "/join/{roomId}") -> bool:
        status, _, _ = await self.call("POST", f"{CS}/join/{q(room_id)}", label=label, token=user.token, body={})
        return status == 200

    async def send_message(self, user: User, room_id: str, content: dict[str, Any], label: str = "/rooms/{roomId}/send") -> str | None:
        path = f"{CS}/rooms/{q(room_id)}/send/m.room.message/{q(user.txn())}"
        status, body, _ = await self.call("PUT", path, label=label, token=user.token, body=content)
        if status == 200 and isinstance(body, dict) and "event_id" in body:
            return str(body["event_id"])
        if status == 200:
            self.errors.add(f"PUT {label} -> 200 without event_id", repr(body)[:300])
        return None

    async def sync(self, user: User, since: str | None = None, timeout_ms: int = 0, label: str = "/sync", filter_: str | None = None) -> tuple[int, Any, int]:
        params = {"timeout": str(timeout_ms)}
        if since:
            params["since"] = since
        if filter_:
            params["filter"] = filter_
        return await self.call("GET", CS + "/sync", label=label, token=user.token, params=params, timeout=timeout_ms / 1000.0 + self.request_timeout)


async def gather_bounded(limit: int, factories: list[Callable[[], Awaitable[T]]], deadline: float | None = None) -> list[T | None]:
    """Run ``factory()`` for each factory with at most ``limit`` in flight; results in order.

    Coroutines are created only when a worker picks them up, so a cancelled run
    leaves none un-awaited. After ``deadline`` (time.monotonic()) no new one is
    started; those not started give None.
    """
    results: list[T | None] = [None] * len(factories)
    it = iter(enumerate(factories))

    async def worker() -> None:
        for i, factory in it:
            if deadline is not None and time.monotonic() >= deadline:
                return
            results[i] = await factory()

    await asyncio.gather(*(worker() for _ in range(max(1, min(limit, len(factories))))))
    return results
