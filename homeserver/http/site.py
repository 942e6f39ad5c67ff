"""twisted.web glue: body limits, dispatch, error rendering, CORS, metrics, access log."""

from __future__ import annotations

import contextvars
import ipaddress
import itertools
import json
import logging
import tempfile
import time
import weakref
from typing import Any

from prometheus_client import Counter, Histogram
from twisted.internet import defer, tcp
from twisted.python.failure import Failure
from twisted.internet import address
from twisted.protocols.basic import FileSender
from twisted.web import http, resource, server

from homeserver.api.errors import Codes, MatrixError, TooLarge, Unrecognized
from homeserver.context import request_id_var, user_id_var
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from storage.database import InvalidDataError

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("sup.access")

HTTP_REQUESTS = Counter("sup_http_requests_total", "HTTP requests by route and status.", ["method", "route", "status"])
HTTP_DURATION = Histogram(
    "sup_http_request_duration_seconds",
    "HTTP request latency by route.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

CORS_HEADERS = {
    b"Access-Control-Allow-Origin": b"*",
    b"Access-Control-Allow-Methods": b"GET, HEAD, POST, PUT, DELETE, OPTIONS",
    b"Access-Control-Allow-Headers": b"X-Requested-With, Content-Type, Authorization, Date",
    b"Access-Control-Expose-Headers": b"Content-Disposition, Retry-After",
}

_request_counter = itertools.count(1)

# labelled metric children, looked up once per (method, route[, status]) instead of on every request
_REQUESTS_CHILDREN: dict[tuple[str, str, int], Any] = {}
_DURATION_CHILDREN: dict[tuple[str, str], Any] = {}


def _requests_child(method: str, route: str, status: int) -> Any:
    key = (method, route, status)
    child = _REQUESTS_CHILDREN.get(key)
    if child is None:
        child = _REQUESTS_CHILDREN[key] = HTTP_REQUESTS.labels(method, route, str(status))
    return child


def _duration_child(method: str, route: str) -> Any:
    key = (method, route)
    child = _DURATION_CHILDREN.get(key)
    if child is None:
        child = _DURATION_CHILDREN[key] = HTTP_DURATION.labels(method, route)
    return child


class RawResponse:
    """A non-JSON answer (media, metrics, HTML)."""

    def __init__(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}


class FileResponse(RawResponse):
    """A file on local disk, streamed to the client in small chunks as the connection takes them (never read
    whole into memory: 20 concurrent downloads of a 50 MB file must not cost 1 GB)."""

    def __init__(self, status: int, path: str, size: int, content_type: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, b"", content_type, headers)
        self.path = path
        self.size = size


class Written:
    """Returned by a handler that wrote and finished the response itself (streaming)."""


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # built once (json.dumps with options builds one per call)


def json_bytes(value: Any) -> bytes:
    return _ENCODER.encode(value).encode("utf-8")


class LimitedRequest(server.Request):
    """A twisted request that stops buffering a body past the server's hard limit."""

    hard_body_limit = 1024 * 1024
    x_forwarded = False  # the listener sits behind a trusted reverse proxy (listeners[].x_forwarded)
    # No Matrix API takes an HTML form: Twisted would otherwise parse the Content-Type of every POST with the
    # email package (a measurable share of createRoom/join CPU) and merge form fields into the query arguments.
    _parsePOSTFormSubmission = False

    def getClientAddress(self) -> Any:
        """The TCP peer, or on an ``x_forwarded`` listener the address the proxy reports: the last entry of
        X-Forwarded-For (the one our proxy appended; anything before it is what the client claimed). Listeners
        without the option ignore the header, so clients cannot pick their own rate-limit bucket."""
        peer = super().getClientAddress()
        if not self.x_forwarded:
            return peer
        raw = self.requestHeaders.getRawHeaders(b"x-forwarded-for")
        if not raw:
            return peer
        candidate = raw[-1].split(b",")[-1].strip().decode("latin-1")
        try:
            ip = ipaddress.ip_address(candidate.strip("[]"))
        except ValueError:
            return peer
        return (address.IPv6Address if ip.version == 6 else address.IPv4Address)("TCP", str(ip), 0)

    def gotLength(self, length: int | None) -> None:
        self.body_length = 0
        self.body_too_large = bool(length is not None and length > self.hard_body_limit)
        if length is None or self.body_too_large:
            # Twisted opens a real temporary file when the length is unknown (every GET, e.g. each /sync
            # long-poll): an open + unlink per request. Spool in memory instead; spills to disk past 100 KB.
            self.content = tempfile.SpooledTemporaryFile(max_size=100_000)  # noqa: SIM115 - lives as long as the request
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        self.body_length = getattr(self, "body_length", 0) + len(data)
        if self.body_length > self.hard_body_limit:
            self.body_too_large = True
            return
        if not getattr(self, "body_too_large", False):
            super().handleContentChunk(data)


def _send_now(transport: Any) -> None:
    """Hand a finished response to the kernel now instead of at the reactor's next write pass.

    Twisted's TCP transport only buffers in ``write``; the socket is written when the reactor next polls.
    When one notify wakes 20 long-polls in a single reactor turn, every answer would wait for the last one
    to be computed. Only a plain TCP connection that stays open and has nothing else in flight is flushed
    here; on a send error the transport is still registered for writing and the reactor handles it as usual.
    """
    if (
        isinstance(transport, tcp.Connection)
        and transport.connected
        and not getattr(transport, "TLS", False)
        and not transport.disconnecting
        and not transport._writeDisconnecting
        and (transport._tempDataLen or len(transport.dataBuffer) > transport.offset)
    ):
        transport.doWrite()


class DispatchResource(resource.Resource):
    """The single leaf resource: route, run the async handler, render JSON or errors."""

    isLeaf = True

    def __init__(
        self,
        router: Router,
        max_json_body: int,
        cors: bool = True,
        listener_name: str = "client",
        raw_resources: dict[str, resource.Resource] | None = None,
    ) -> None:
        super().__init__()
        self.router = router
        # Exact path -> twisted resource that handles the request itself (e.g. a WebSocket upgrade).
        # Registered with ``core.on_raw_resource``; bypasses routing, JSON rendering and body limits.
        self.raw_resources = dict(raw_resources or {})
        self.max_json_body = max_json_body
        self.cors = cors
        self.listener_name = listener_name
        self.in_flight: set[defer.Deferred[Any]] = set()

    def render(self, request: server.Request) -> Any:
        if self.raw_resources:
            raw = self.raw_resources.get(request.path.decode("utf-8", "replace"))
            if raw is not None:
                return raw.render(request)
        request_id = f"{request.method.decode('ascii', 'replace')}-{next(_request_counter)}"
        started = time.perf_counter()
        method = request.method.decode("ascii", "replace").upper()
        raw_path = request.path.decode("utf-8", "replace")
        route, params, path_known = self.router.match(method, raw_path)
        route_name = route.name if route else ("OPTIONS" if method == "OPTIONS" else "unknown")

        if self.cors:
            for k, v in CORS_HEADERS.items():
                request.setHeader(k, v)

        async def run() -> Any:
            request_id_var.set(request_id)
            user_id_var.set("-")
            if method == "OPTIONS":
                return 200, {}
            if route is None:
                if path_known:
                    raise Unrecognized(405, "Unrecognized request: method not allowed")
                raise Unrecognized(404, "Unrecognized request")
            max_body = route.max_body or self.max_json_body
            if getattr(request, "body_too_large", False) or getattr(request, "body_length", 0) > max_body:
                raise TooLarge()
            _reject_nul_params(params, request.args)
            sup_request = SupRequest(request, raw_path, params, max_body, request_id)
            return await route.handler(sup_request, **params)

        def on_done(result: Any) -> None:
            self._respond(request, result, request_id)

        def on_error(failure: Failure) -> None:
            if failure.check(defer.CancelledError):
                return  # client went away; nothing to send
            exc = failure.value
            if isinstance(exc, InvalidDataError):
                exc = MatrixError(400, Codes.INVALID_PARAM, f"Invalid input: {exc}")
            if isinstance(exc, MatrixError):
                if exc.status >= 500:
                    logger.error("request %s failed: %s", request_id, exc.msg)
                self._respond(request, exc, request_id)
                return
            logger.error(
                "unhandled error in %s %s (request %s)",
                method,
                route_name,
                request_id,
                exc_info=(failure.type, failure.value, failure.getTracebackObject()),
            )
            self._respond(
                request,
                MatrixError(500, Codes.UNKNOWN, f"Internal server error (request id {request_id})", {"request_id": request_id}),
                request_id,
            )

        def finish_metrics(_: Any) -> None:
            elapsed = time.perf_counter() - started
            status = getattr(request, "code", 0)
            _requests_child(method, route_name, status).inc()
            _duration_child(method, route_name).observe(elapsed)
            if access_logger.isEnabledFor(logging.INFO):
                addr = request.getClientAddress()
                access_logger.info(
                    "%s %s %s %s %d %.1fms",
                    request_id,
                    addr.host if hasattr(addr, "host") else "-",
                    method,
                    route_name if route is not None else raw_path[:200],  # unknown paths: log the path (never the query)
                    status,
                    elapsed * 1000,
                )

        notify = request.notifyFinish()
        notify.addBoth(finish_metrics)
        ctx = contextvars.copy_context()
        d = ctx.run(defer.Deferred.fromCoroutine, run())
        if not d.called:
            self.in_flight.add(d)
            d.addBoth(lambda r: (self.in_flight.discard(d), r)[1])
            notify.addErrback(lambda f: d.cancel() if not d.called else None)
        d.addCallbacks(on_done, on_error)
        d.addErrback(lambda f: logger.error("failed rendering response: %s", f.getErrorMessage()))
        return server.NOT_DONE_YET

    def _respond(self, request: server.Request, result: Any, request_id: str) -> None:
        if request.finished or getattr(request, "_disconnected", False):
            return
        if isinstance(result, Written):
            return
        if isinstance(result, MatrixError):
            status, body, ctype, headers = result.status, json_bytes(result.to_json()), "application/json", result.headers
        elif isinstance(result, FileResponse):
            self._send_file(request, result)
            return
        elif isinstance(result, RawResponse):
            status, body, ctype, headers = result.status, result.body, result.content_type, result.headers
        else:
            status, payload = result
            body, ctype, headers = json_bytes(payload), "application/json", {}
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", ctype.encode("ascii"))
        request.setHeader(b"Cache-Control", b"no-cache, no-store, must-revalidate")
        for k, v in headers.items():
            request.setHeader(k.encode("latin-1"), v.encode("latin-1"))
        request.setHeader(b"Content-Length", str(len(body)).encode("ascii"))
        transport = getattr(getattr(request, "channel", None), "transport", None)  # finish() drops the channel
        if request.method != b"HEAD":
            request.write(body)
        request.finish()
        _send_now(transport)

    @staticmethod
    def _send_file(request: server.Request, result: FileResponse) -> None:
        try:
            f = open(result.path, "rb")  # noqa: SIM115 - closed when the transfer ends
        except OSError:
            body = json_bytes(MatrixError(404, Codes.NOT_FOUND, "Media not found").to_json())
            request.setResponseCode(404)
            request.setHeader(b"Content-Type", b"application/json")
            request.setHeader(b"Content-Length", str(len(body)).encode("ascii"))
            request.write(body)
            request.finish()
            return
        request.setResponseCode(result.status)
        request.setHeader(b"Content-Type", result.content_type.encode("ascii"))
        request.setHeader(b"Cache-Control", b"no-cache, no-store, must-revalidate")
        for k, v in result.headers.items():
            request.setHeader(k.encode("latin-1"), v.encode("latin-1"))
        request.setHeader(b"Content-Length", str(result.size).encode("ascii"))
        if request.method == b"HEAD":
            f.close()
            request.finish()
            return
        # A pull producer: the next 16 KB chunk is read only when the transport has sent the previous one.
        sender = FileSender()
        transfer = sender.beginFileTransfer(f, request)

        def done(outcome: Any) -> None:
            f.close()
            if not request.finished and not getattr(request, "_disconnected", False):
                request.finish()

        transfer.addBoth(done)
        request.notifyFinish().addErrback(lambda _f: sender.stopProducing() if sender.consumer is not None else None)

    async def wait_idle(self, clock: Any, timeout_s: float) -> bool:
        """Wait (bounded) until in-flight requests are done. True when idle."""
        deadline = clock.time() + timeout_s
        while self.in_flight and clock.time() < deadline:
            await clock.sleep(0.05)
        return not self.in_flight

    def cancel_in_flight(self) -> None:
        for d in list(self.in_flight):
            d.cancel()


BODY_PROGRESS_BYTES = 4096  # a body stall timer restarts only after this much new data (not per trickled byte)


class SupChannel(http.HTTPChannel):
    """HTTPChannel with a request read deadline (slowloris): Twisted's idle timeout restarts on every byte, so a
    client trickling one byte every 25 s held a connection forever. Here a request's headers must be complete
    ``read_timeout_s`` after its first byte, and its body may not go that long without ``BODY_PROGRESS_BYTES``
    of progress. A request being answered (a long-poll, a WebSocket) is not timed by this."""

    read_timeout_s = 30.0
    _read_timer: Any = None
    _deadline: float | None = None  # time.monotonic() by which the current read phase must progress
    _answering = False
    _in_body = False
    _body_progress = 0

    def dataReceived(self, data: bytes) -> None:
        if not self._answering:
            if self._deadline is None:
                self._arm()
            elif self._in_body:
                self._body_progress += len(data)
                if self._body_progress >= BODY_PROGRESS_BYTES:
                    self._arm()
        super().dataReceived(data)

    def allHeadersReceived(self) -> None:
        super().allHeadersReceived()
        if not self._answering:
            self._in_body = True
            self._arm()

    def allContentReceived(self) -> None:
        self._deadline = None
        self._answering = True
        self._in_body = False
        super().allContentReceived()

    def requestDone(self, request: Any) -> None:
        super().requestDone(request)
        self._answering = False  # the next byte starts the next request's deadline

    def connectionLost(self, reason: Any = None) -> None:
        self._deadline = None
        if self._read_timer is not None and self._read_timer.active():
            self._read_timer.cancel()
        self._read_timer = None
        super().connectionLost(reason)

    # The deadline is a number moved per request; one timer per connection checks it and re-arms itself for
    # the time left (a keep-alive connection serving many requests schedules about one timer per
    # read_timeout_s, not two timers and two cancellations per request).
    def _arm(self) -> None:
        self._body_progress = 0
        self._deadline = time.monotonic() + self.read_timeout_s
        if self._read_timer is None:
            self._read_timer = self.callLater(self.read_timeout_s, self._check_deadline)

    def _check_deadline(self) -> None:
        self._read_timer = None
        deadline = self._deadline
        if deadline is None:
            return  # answering, or between requests: the next byte arms it again
        left = deadline - time.monotonic()
        if left > 0:
            self._read_timer = self.callLater(left, self._check_deadline)
            return
        self._read_timed_out()

    def _read_timed_out(self) -> None:
        self._deadline = None
        if not self._answering and self.transport is not None:
            self.transport.abortConnection()


class SupSite(server.Site):
    """A Site whose requests enforce a hard body limit and which logs nothing itself."""

    def __init__(self, root: DispatchResource, hard_body_limit: int, x_forwarded: bool = False,
                 read_timeout_s: float = 30.0) -> None:
        class _Req(LimitedRequest):
            pass

        class _Channel(SupChannel):
            pass

        _Req.hard_body_limit = hard_body_limit
        _Req.x_forwarded = x_forwarded
        _Channel.read_timeout_s = read_timeout_s
        self.protocol = lambda: http._GenericHTTPChannelProtocol(_Channel())  # type: ignore[assignment]
        super().__init__(root)
        self.requestFactory = _Req
        self.dispatch = root
        self._channels: weakref.WeakSet[Any] = weakref.WeakSet()

    def buildProtocol(self, addr: Any) -> Any:
        channel = super().buildProtocol(addr)
        if channel is not None:
            self._channels.add(channel)
        return channel

    def close_connections(self) -> None:
        """Drop every open connection (idle keep-alives included): after shutdown, a peer's pooled connection
        must not keep reaching a server whose database is closed."""
        for channel in list(self._channels):
            # twisted wraps the HTTP/1.1 channel in a negotiating proxy; the transport lives on the inner one
            transport = getattr(channel, "transport", None) or getattr(getattr(channel, "_channel", None), "transport", None)
            if transport is None:
                continue
            abort = getattr(transport, "abortConnection", None)
            try:
                (abort or transport.loseConnection)()  # no response is left to flush: in-flight ones finished or were cancelled
            except Exception:  # already closing (e.g. a TLS connection mid-shutdown)
                pass

    def log(self, request: server.Request) -> None:  # the access log is ours
        pass


def _reject_nul_params(params: dict[str, str], args: dict[bytes, list[bytes]] | None) -> None:
    """Every route, every family: a NUL in a path parameter or query argument is 400 before any
    handler runs (such values would become database keys, which PostgreSQL cannot store)."""
    for name, value in params.items():
        if "\x00" in value:
            raise MatrixError(400, Codes.INVALID_PARAM, f"{name} must not contain NUL characters")
    for name, values in (args or {}).items():
        if b"\x00" in name or any(b"\x00" in v for v in values):
            raise MatrixError(400, Codes.INVALID_PARAM, "query parameters must not contain NUL characters")
