"""``PUT /_matrix/federation/v1/send/{txnId}``: a transaction of PDUs and EDUs from another server.

The envelope is parsed at the edge (``homeserver/api/models/federation.py:TransactionBody``: ``origin``,
``origin_server_ts``, at most 50 PDUs and 100 EDUs, each an object kept as sent). Deduplicated by (origin, txnId)
(the stored answer is replayed; a concurrent retry waits for the first); PDUs are grouped by room and processed in order within a room (rooms in
parallel), each with its own result; one bad PDU never fails the transaction. EDUs go to an injected
dispatcher (fednet's EDU handlers)."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from twisted.internet import defer

from federation.inbound.events import FederationEventHandler, PduRejected, parse_pdu
from federation.transport.server.routes import FederationRoutes
from homeserver.api.errors import BadJson
from homeserver.api.models.federation import TransactionBody
from homeserver.events import Event
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from storage.stores.federation_events import FederationEventStore

logger = logging.getLogger(__name__)


class EduDispatcher(Protocol):
    async def on_edu(self, origin: str, edu_type: str, content: Any) -> None: ...


class NoEdus:
    async def on_edu(self, origin: str, edu_type: str, content: Any) -> None:
        logger.debug("EDU %s from %s ignored (no EDU handlers)", edu_type, origin)


class TransactionHandler:
    def __init__(self, events: FederationEventHandler, store: FederationEventStore, routes: FederationRoutes | None,
                 clock: Any, edus: EduDispatcher | None = None) -> None:
        self.events = events
        self.store = store
        self.routes = routes
        self.clock = clock
        self.edus: EduDispatcher = edus or NoEdus()
        # A ``federation_inbound`` worker hands the PDUs and EDUs to the processes that own them (after the
        # deduplication here): ``forward(origin, pdus, edus) -> {"pdus": results}``. None: process them here.
        self.forward: Any = None
        self._in_flight: dict[tuple[str, str], list[defer.Deferred[dict[str, Any]]]] = {}

    async def on_transaction(self, origin: str, txn_id: str, body: TransactionBody) -> dict[str, Any]:
        pdus, edus = body.pdus, body.edus
        key = (origin, txn_id)
        waiters = self._in_flight.get(key)
        if waiters is not None:  # the same transaction is being processed: answer as it does
            d: defer.Deferred[dict[str, Any]] = defer.Deferred()
            waiters.append(d)
            return await d
        done = await self.store.get_txn_response(origin, txn_id)
        if done is not None:
            return done
        waiters = self._in_flight[key] = []
        try:
            response = await (self.forward or self._process)(origin, pdus, edus)
            await self.store.store_txn_response(origin, txn_id, response, self.clock.time_msec())
        except BaseException as e:
            del self._in_flight[key]
            for d in waiters:
                d.errback(e)
            raise
        del self._in_flight[key]
        for d in waiters:
            d.callback(response)
        return response

    async def process(self, origin: str, pdus: list[Any], edus: list[Any], verified: bool = False) -> dict[str, Any]:
        """The PDUs and EDUs of a transaction another process deduplicated and forwarded here (``verified``: that
        process already checked the PDUs' signatures and hashes with :meth:`screen`)."""
        if not isinstance(pdus, list) or not isinstance(edus, list):
            raise BadJson("'pdus' and 'edus' must be lists")
        return await self._process(origin, pdus, edus, verified)

    async def screen(self, origin: str, pdus: list[Any]) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        """The checks before a PDU reaches its room (room version, ACL, format, signatures and hashes), for a process
        that forwards the rest: the PDUs that passed, and the results of those that did not."""
        results: dict[str, dict[str, Any]] = {}
        parsed, raw = await self._parse(origin, pdus, results)
        errors = await self.events.verify(parsed)
        passed = []
        for ev, pdu, err in zip(parsed, raw, errors):
            if err is not None:
                results[ev.event_id] = {"error": err}
            else:
                passed.append(pdu)
        return passed, results

    async def _parse(self, origin: str, pdus: list[Any], results: dict[str, dict[str, Any]]) -> tuple[list[Event], list[Any]]:
        parsed: list[Event] = []
        raw: list[Any] = []
        for pdu in pdus:
            eid = pdu.get("event_id") if isinstance(pdu, dict) else None
            room_id = pdu.get("room_id") if isinstance(pdu, dict) else None
            try:
                if not isinstance(room_id, str):
                    raise PduRejected("PDU has no room_id")
                rv = await self.events.room_version(room_id)
                if self.routes is not None and not await self.routes.is_allowed(origin, room_id):
                    raise PduRejected("server is banned from this room by its server ACL")
                ev = parse_pdu(pdu, rv)
            except PduRejected as e:
                if isinstance(eid, str):
                    results[eid] = {"error": str(e)}
                continue
            parsed.append(ev)
            raw.append(pdu)
        return parsed, raw

    async def _process(self, origin: str, pdus: list[Any], edus: list[Any], verified: bool = False) -> dict[str, Any]:
        results: dict[str, dict[str, Any]] = {}
        by_room: dict[str, list[Event]] = {}
        parsed, _ = await self._parse(origin, pdus, results)
        errors: list[Any] = [None] * len(parsed) if verified else await self.events.verify(parsed)
        for ev, err in zip(parsed, errors):
            if err is not None:
                results[ev.event_id] = {"error": err}
            else:
                by_room.setdefault(ev.room_id, []).append(ev)
        known = None
        if len(by_room) > 1:  # one read for every room (one room reads its own, the same single read)
            try:
                known = await self.events.prefetch([ev for evs in by_room.values() for ev in evs])
            except Exception:  # noqa: BLE001 - each room reads what it needs itself
                logger.exception("prefetching a transaction's events failed")
        await defer.gatherResults([defer.ensureDeferred(self._room(origin, evs, results, known)) for evs in by_room.values()],
                                  consumeErrors=True)
        for edu in edus:
            if not isinstance(edu, dict) or not isinstance(edu.get("edu_type"), str):
                continue
            try:
                await self.edus.on_edu(origin, edu["edu_type"], edu.get("content"))
            except Exception:
                logger.exception("EDU %s from %s failed", edu.get("edu_type"), origin)
        return {"pdus": results}

    async def _room(self, origin: str, events: list[Event], results: dict[str, dict[str, Any]], known: Any = None) -> None:
        try:
            outcomes = await self.events.on_room_pdus(origin, events, known)  # in order within a room
        except Exception as e:  # noqa: BLE001 - never fail the transaction
            logger.exception("processing %d PDU(s) of %s from %s failed", len(events), events[0].room_id, origin)
            outcomes = [e] * len(events)
        for ev, outcome in zip(events, outcomes):
            if isinstance(outcome, PduRejected):
                results[ev.event_id] = {"error": str(outcome)}
            elif isinstance(outcome, BaseException):
                logger.error("processing %s from %s failed", ev.event_id, origin,
                             exc_info=(type(outcome), outcome, outcome.__traceback__))
                results[ev.event_id] = {"error": f"internal error: {type(outcome).__name__}"}
            elif outcome.status is None or outcome.status.value == "accepted":
                results[ev.event_id] = {}
            else:
                results[ev.event_id] = {"error": f"{outcome.status.value}: {outcome.reason}"}


class TransactionServlet:
    def __init__(self, routes: FederationRoutes, handler: TransactionHandler) -> None:
        self.routes = routes
        self.handler = handler

    def register(self, router: Router) -> None:
        self.routes.add(router, "federation", "PUT", "/send/{txn_id}", self.on_send, "federation_send",
                        max_body=10 * 1024 * 1024)

    async def on_send(self, request: SupRequest, origin: str, txn_id: str) -> tuple[int, dict[str, Any]]:
        return 200, await self.handler.on_transaction(origin, txn_id, parse_body(request, TransactionBody))
