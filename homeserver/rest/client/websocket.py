"""WebSocket delivery of sync payloads: ``/_matrix/client/unstable/org.sup.ws`` (see docs/websocket.md).

One session = one long-running sync loop. The server pushes a frame each time the
user's sync has something new; every frame carries the ``next_batch`` a reconnecting
client hands back as ``since`` to resume with nothing lost and nothing repeated.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet import defer

from homeserver.api.errors import MatrixError
from homeserver.sync.result import SyncRequest
from homeserver.sync.token import StreamToken

logger = logging.getLogger(__name__)

PATH = "/_matrix/client/unstable/org.sup.ws"
SUBPROTOCOL = "org.sup.sync.v1"
CLOSE_AUTH = 4001  # bad or missing access token
CLOSE_BAD_REQUEST = 4000  # malformed since/filter/message
CLOSE_SHUTDOWN = 1001
AUTH_TIMEOUT_S = 10.0
LONG_POLL_MS = 30_000
MAX_MESSAGE = 64 * 1024


class _AuthShim:
    """Just enough of SupRequest for ``core.auth.get_user``."""

    method = "GET"
    path = PATH

    def __init__(self, token: str | None, peer: str) -> None:
        self._token = token
        self._peer = peer
        self.requester: Any = None

    def access_token(self) -> str | None:
        return self._token

    def header(self, name: str) -> str | None:
        return f"Bearer {self._token}" if name.lower() == "authorization" and self._token else None

    @property
    def client_ip(self) -> str:
        return self._peer


class SyncWebSocketProtocol(WebSocketServerProtocol):
    factory: SyncWebSocketFactory

    def onConnect(self, request: Any) -> str | None:
        self._query = {k: v[-1] for k, v in request.params.items() if v}
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        self._header_token = token.strip() if scheme.lower() == "bearer" and token.strip() else None
        self._requester: Any = None
        self._loop: defer.Deferred[Any] | None = None
        self._closed = False
        self._auth_timer: Any = None
        self._syncing = False
        self._token: str | None = None
        self._recheck: defer.Deferred[Any] | None = None  # a re-authentication in flight (after a revocation)
        self._checked_at = 0.0  # when the token was last found valid
        peer = getattr(self.transport.getPeer(), "host", "unknown") if self.transport else "unknown"
        self._peer = peer
        if SUBPROTOCOL in (request.protocols or []):
            return SUBPROTOCOL
        return None

    def onOpen(self) -> None:
        self.factory.sessions.add(self)
        if self._header_token is not None:
            defer.ensureDeferred(self._authenticate(self._header_token))
        else:
            self._auth_timer = self.factory.clock.call_later(AUTH_TIMEOUT_S, self._close, CLOSE_AUTH, "M_MISSING_TOKEN: no access token")

    async def _authenticate(self, token: str) -> None:
        if self._auth_timer is not None and self._auth_timer.active():
            self._auth_timer.cancel()
        try:
            self._requester = await self.factory.auth.get_user(_AuthShim(token, self._peer))
            self._token = token
            self._checked_at = self.factory.clock.time()
            self.factory.index(self)
        except MatrixError as e:
            self._close(CLOSE_AUTH, f"{e.errcode}: {e.msg}")
            return
        except Exception:
            logger.exception("websocket authentication failed")
            self._close(CLOSE_AUTH, "M_UNKNOWN: authentication failed")
            return
        if self._closed:
            return
        try:
            req = await self._parse_sync_request()
        except MatrixError as e:
            self._close(CLOSE_BAD_REQUEST, f"{e.errcode}: {e.msg}")
            return
        self._loop = defer.ensureDeferred(self._run(req))
        self._loop.addErrback(self._loop_failed)

    async def _parse_sync_request(self) -> SyncRequest:
        q = self._query
        since = StreamToken.parse(q["since"]) if q.get("since") else None
        flt = await self.factory.filtering.resolve(self._requester.user_id, q.get("filter"))
        set_presence = q.get("set_presence")
        if set_presence not in (None, "online", "offline", "unavailable"):
            from homeserver.api.errors import InvalidParam

            raise InvalidParam("set_presence must be one of online, offline, unavailable")
        return SyncRequest(
            user_id=self._requester.user_id,
            device_id=self._requester.device_id,
            filter=flt,
            since=since,
            set_presence=set_presence,
            timeout_ms=LONG_POLL_MS,
            use_state_after=q.get("use_state_after") in ("true", "1"),
            ack_to_device=False,
        )

    async def _run(self, req: SyncRequest) -> None:
        handler = self.factory.sync_handler
        presence = self.factory.presence
        user = req.user_id
        if req.since is not None and req.device_id and self.factory.to_device_ack is not None:
            await self.factory.to_device_ack(user, req.device_id, req.since.get("to_device"))
        if presence is not None:
            await presence.user_syncing(user, req.set_presence)
            self._syncing = True
        since = req.since
        first = True
        while not self._closed:
            result, next_token = await handler.sync_result(replace(req, since=since))
            if self.factory.clock.time() - self._checked_at >= self.factory.recheck_interval_s:
                self.revalidate()  # the token may have expired (or the account changed) since the last check
            if self._recheck is not None:  # a revocation touched this user: nothing goes out until re-checked
                await self._recheck
            if self._closed:
                return
            if first or not result.is_empty():
                body = result.render(next_token, req.use_state_after)
                self._send({"type": "sync", "next_batch": body["next_batch"], "sync": body})
            first = False
            since = next_token

    def revalidate(self) -> None:
        """A revocation concerned this session's user: re-authenticate the token (closing on failure) before
        another frame is sent."""
        if self._closed or self._token is None or self._recheck is not None:
            return
        self._recheck = defer.ensureDeferred(self._reauthenticate())

    async def _reauthenticate(self) -> None:
        try:
            await self.factory.auth.get_user(_AuthShim(self._token, self._peer))
            self._checked_at = self.factory.clock.time()
        except MatrixError as e:
            self._close(CLOSE_AUTH, f"{e.errcode}: {e.msg}")
        except Exception:
            logger.exception("websocket re-authentication failed")
            self._close(CLOSE_AUTH, "M_UNKNOWN: authentication failed")
        finally:
            self._recheck = None

    def _loop_failed(self, failure: Any) -> None:
        if failure.check(defer.CancelledError) or self._closed:
            return
        logger.error("websocket sync loop failed: %s", failure.getErrorMessage())
        self._close(1011, "M_UNKNOWN: internal error")

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if isBinary or len(payload) > MAX_MESSAGE:
            self._send_error("M_BAD_JSON", "Send JSON text frames")
            return
        try:
            msg = json.loads(payload.decode("utf-8"))
        except ValueError:
            self._send_error("M_NOT_JSON", "Message is not JSON")
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            self._send_error("M_BAD_JSON", "Messages are objects with a 'type'")
            return
        kind = msg["type"]
        if kind == "ping":
            self._send({"type": "pong", **({"id": msg["id"]} if "id" in msg else {})})
        elif kind == "auth":
            token = msg.get("access_token")
            if self._requester is not None or self._header_token is not None:
                self._send_error("M_BAD_JSON", "Already authenticated")
            elif not isinstance(token, str) or not token:
                self._close(CLOSE_AUTH, "M_MISSING_TOKEN: access_token must be a string")
            else:
                self._header_token = token
                defer.ensureDeferred(self._authenticate(token))
        elif kind == "ack":
            defer.ensureDeferred(self._ack(msg.get("next_batch"))).addErrback(lambda f: None)
        else:
            self._send_error("M_UNRECOGNIZED", f"Unknown message type {kind[:40]!r}")

    async def _ack(self, token: Any) -> None:
        if self._requester is None or not isinstance(token, str):
            return
        try:
            pos = StreamToken.parse(token).get("to_device")
        except MatrixError as e:
            self._send_error(e.errcode, e.msg)
            return
        if self._requester.device_id and self.factory.to_device_ack is not None:
            await self.factory.to_device_ack(self._requester.user_id, self._requester.device_id, pos)

    def _send(self, obj: dict[str, Any]) -> None:
        if not self._closed:
            self.sendMessage(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), isBinary=False)

    def _send_error(self, errcode: str, error: str) -> None:
        self._send({"type": "error", "errcode": errcode, "error": error})

    def _close(self, code: int, reason: str) -> None:
        if not self._closed:
            self._closed = True
            self.sendClose(code=code, reason=reason.encode("utf-8")[:120].decode("utf-8", "ignore"))
            self._stop()

    def _stop(self) -> None:
        self._closed = True
        if self._auth_timer is not None and self._auth_timer.active():
            self._auth_timer.cancel()
        if self._loop is not None and not self._loop.called:
            self._loop.cancel()
        if self._syncing and self.factory.presence is not None and self._requester is not None:
            self._syncing = False
            self.factory.presence.sync_ended(self._requester.user_id)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self._stop()
        self.factory.sessions.discard(self)
        self.factory.unindex(self)


class SyncWebSocketFactory(WebSocketServerFactory):
    protocol = SyncWebSocketProtocol

    def __init__(self, clock: Any, auth: Any, filtering: Any, sync_handler: Any, presence: Any, to_device_ack: Any) -> None:
        super().__init__()
        self.clock = clock
        self.auth = auth
        self.filtering = filtering
        self.sync_handler = sync_handler
        self.presence = presence
        self.to_device_ack = to_device_ack
        self.sessions: set[SyncWebSocketProtocol] = set()
        self.by_user: dict[str, set[SyncWebSocketProtocol]] = {}  # authenticated sessions, for revocation
        # Besides revocation events, a session's token is re-checked before a frame when the last check is this
        # old: an access token that simply expires stops the stream within this time.
        self.recheck_interval_s = 10.0
        # protocol-level pings keep NATs open and detect dead peers; clients' pings are answered by autobahn
        self.setProtocolOptions(autoPingInterval=30, autoPingTimeout=20, maxMessagePayloadSize=MAX_MESSAGE)

    def index(self, session: SyncWebSocketProtocol) -> None:
        self.by_user.setdefault(session._requester.user_id, set()).add(session)

    def unindex(self, session: SyncWebSocketProtocol) -> None:
        if session._requester is not None:
            users = self.by_user.get(session._requester.user_id)
            if users is not None:
                users.discard(session)
                if not users:
                    del self.by_user[session._requester.user_id]

    def on_revocation(self, user_id: str | None) -> None:
        """Tokens of ``user_id`` (None: someone's) were revoked or the account changed: its sessions re-check."""
        targets = list(self.by_user.get(user_id, ())) if user_id is not None else list(self.sessions)
        for s in targets:
            s.revalidate()

    def close_all(self) -> None:
        for s in list(self.sessions):
            s._close(CLOSE_SHUTDOWN, "server shutting down")


def make_resource(factory: SyncWebSocketFactory) -> WebSocketResource:
    return WebSocketResource(factory)


