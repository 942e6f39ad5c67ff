"""The internal HTTP API between the processes of one deployment (issue 18, item 5).

Calls that must run on another process (above all: writing a room's events on the room's event
persister) are ``POST /_sup/internal/v1/<endpoint>`` with a JSON body and a JSON answer:

- **Only on the internal listener.** A process serves this API on the ``internal`` URL of its entry in the
  deployment file (``instances.NAME.internal``), never on a public listener: ``internal`` is not a listener
  resource of the homeserver config, so no ``listeners`` entry can expose it.
- **Authenticated** by the deployment file's ``shared_secret``: ``Authorization: Bearer <secret>``, compared
  in constant time (:func:`hmac.compare_digest`). No header → 401 ``M_MISSING_TOKEN``; a wrong one → 403
  ``M_FORBIDDEN``. Unknown endpoint → 404 ``M_UNRECOGNIZED``.
- **Errors travel as Matrix errors.** An endpoint that raises a :class:`MatrixError` answers with its status and
  body; :class:`InternalClient` raises the same :class:`MatrixError` (status, errcode, message, extra fields)
  in the caller, which hands it to its client unchanged.

Endpoints are registered by wiring modules: ``core.internal_api.register(name, fn)`` with
``async fn(body: dict) -> dict``. The endpoint names and bodies of the room writer are in
``workers/wiring/room_writer.py``; ``docs/workers.md`` lists them.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

from twisted.internet.error import ConnectError

from homeserver.api.errors import Codes, MatrixError
from homeserver.http.outbound import OutboundError, OutboundHttpClient
from homeserver.http.router import Router
from homeserver.http.routes import add_route

logger = logging.getLogger(__name__)

PREFIX = "/_sup/internal/v1/"
Endpoint = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
MAX_INTERNAL_BODY = 4 * 1024 * 1024


class InternalApi:
    """The server side: named endpoints behind the shared secret (``core.internal_api``)."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode("utf-8")
        self._endpoints: dict[str, Endpoint] = {}

    def register(self, name: str, fn: Endpoint) -> None:
        if name in self._endpoints:
            raise ValueError(f"internal endpoint {name!r} registered twice")
        self._endpoints[name] = fn

    def endpoints(self) -> list[str]:
        return sorted(self._endpoints)

    def router(self) -> Router:
        router = Router()
        add_route(router, "sup", "POST", "/internal/v1/{endpoint}", self._dispatch, "internal", max_body=MAX_INTERNAL_BODY)
        add_route(router, "root", "GET", "/health", self._health, "internal_health")
        return router

    def check_auth(self, header: str | None) -> None:
        if not self._secret:
            raise MatrixError(403, Codes.FORBIDDEN, "The internal API is disabled (no shared_secret)")
        if not header or not header.startswith("Bearer "):
            raise MatrixError(401, Codes.MISSING_TOKEN, "Missing internal API credentials")
        if not hmac.compare_digest(header[7:].encode("utf-8"), self._secret):
            raise MatrixError(403, Codes.FORBIDDEN, "Invalid internal API credentials")

    async def _health(self, request: Any) -> Any:
        return 200, {}

    async def _dispatch(self, request: Any, endpoint: str) -> Any:
        self.check_auth(request.header("Authorization"))
        fn = self._endpoints.get(endpoint)
        if fn is None:
            raise MatrixError(404, Codes.UNRECOGNIZED, f"Unknown internal endpoint {endpoint!r}")
        return 200, await fn(request.json())


def listen_address(url: str) -> tuple[str, int]:
    """(host, port) to bind for an instance's ``internal`` base URL."""
    parts = urlsplit(url)
    if parts.hostname is None:
        raise ValueError(f"internal URL {url!r} has no host")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


class PeerUnavailable(MatrixError):
    """The other process could not be reached (it is restarting, or down)."""

    def __init__(self, instance: str) -> None:
        super().__init__(503, Codes.UNKNOWN, f"Internal service {instance!r} is unavailable; try again")


class InternalClient:
    """The client side: ``await call(instance, endpoint, body) -> dict``; a remote MatrixError is re-raised here.

    A refused connection (the peer is restarting: nothing was sent) is retried for ``connect_retry_s``;
    any other failure (timeout, reset after sending) is not retried, since the call may have run: callers
    make their calls idempotent (transaction ids) where a client may retry."""

    def __init__(self, reactor: Any, clock: Any, deployment: Any, timeout_s: float = 60.0,
                 connect_retry_s: float = 10.0) -> None:
        self.clock = clock
        self.deployment = deployment
        self._auth = f"Bearer {deployment.shared_secret}"
        self.connect_retry_s = connect_retry_s
        # The one outbound client, without the SSRF blocklist: these addresses come from the deployment file.
        self.http = OutboundHttpClient(reactor, [], [], timeout_s, MAX_INTERNAL_BODY)

    def url_of(self, instance: str) -> str:
        inst = self.deployment.instance(instance)
        if not inst.internal:
            raise MatrixError(500, Codes.UNKNOWN, f"instance {instance!r} has no internal API URL")
        return inst.internal.rstrip("/")

    async def call(self, instance: str, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        url = self.url_of(instance) + PREFIX + endpoint
        data = json.dumps(body, separators=(",", ":")).encode("utf-8")
        headers = {"Authorization": self._auth, "Content-Type": "application/json"}
        waited = 0.0
        delay = 0.05
        while True:
            try:
                resp = await self.http.request("POST", url, headers, data)
                break
            except (OutboundError, ConnectError) as e:
                if not _refused(e) or waited >= self.connect_retry_s:
                    logger.warning("internal call %s to %s failed: %s", endpoint, instance, e)
                    raise PeerUnavailable(instance) from None
            await self.clock.sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.5)
        try:
            answer = json.loads(resp.body) if resp.body else {}
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise MatrixError(502, Codes.UNKNOWN, f"Internal service {instance!r} answered {resp.status} without JSON")
        if resp.status != 200:
            errcode = answer.get("errcode") if isinstance(answer.get("errcode"), str) else Codes.UNKNOWN
            msg = answer.get("error") if isinstance(answer.get("error"), str) else ""
            extra = {k: v for k, v in answer.items() if k not in ("errcode", "error")}
            raise MatrixError(resp.status, errcode, msg, extra)
        return answer

    async def close(self) -> None:
        await self.http.close()


def _refused(e: BaseException) -> bool:
    """Was the connection refused (nothing sent)? Walks the cause chain of the outbound client's errors."""
    seen = 0
    cur: BaseException | None = e
    while cur is not None and seen < 5:
        if isinstance(cur, (ConnectError, ConnectionRefusedError)) or "Connection refused" in str(cur):
            return True
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return False

