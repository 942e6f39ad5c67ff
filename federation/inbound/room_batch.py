"""One room's PDUs of one ``/send`` transaction, checked in order and committed together where the checks allow.

:meth:`FederationEventHandler.on_pdu` commits each event before the next is checked (the next one's checks read
the previous one back: its status, its state after). Here the events of a room that simply extend the room's
head — the common case, a peer's messages in order — are checked against the head *in memory* and handed to the
persister without waiting for their commit, so the persister's queue commits them in one transaction (or a few).
What the checks read goes through :class:`PendingOverlay`: the events handed over in this batch (with their
status and the state set after them), then the store, each read once per batch.

An event that does not take that path — an unknown prev or auth event (gap filling fetches over the network), a
fork, a prev that is not the head — first waits for everything handed over before it, then goes through
``on_pdu`` exactly as before. The checks and their outcomes (accepted, rejected, soft-failed) are the same
functions either way (:meth:`FederationEventHandler._context`); only the number of commits changes.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from twisted.internet import defer

from federation.inbound.events import FederationEventHandler, Outcome, with_checked_hash
from homeserver.events import Event
from storage.persistence.context import EventContext
from storage.persistence.event_persister import EventNotWritten, PersistItem, Rebuild
from storage.stores.federation_events import StoredPdu

logger = logging.getLogger(__name__)


class PendingOverlay:
    """The federation event store as the batch sees it: events handed to the persister but maybe not yet
    committed, over the store's answers (cached for the batch: stored events do not change under it, except an
    outlier that this batch accepts, which the overlay then shows as accepted)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._pdus: dict[str, StoredPdu] = {}
        self._status: dict[str, str | None] = {}  # None: not stored (as of the last read)

    def __getattr__(self, name: str) -> Any:  # everything else is the store's
        return getattr(self._store, name)

    def forget(self) -> None:
        """Something was stored behind the overlay's back (a gap was filled): read everything afresh."""
        self._pdus.clear()
        self._status.clear()

    def add_pending(self, ev: Event, status: str, state_before: str | None, state_after: str | None) -> None:
        self._pdus[ev.event_id] = StoredPdu(ev, status, state_before, state_after)
        self._status[ev.event_id] = status

    def seed(self, other: PendingOverlay) -> None:
        """Start from what ``other`` already read (a transaction-wide prefetch shared by its rooms)."""
        self._pdus.update(other._pdus)
        self._status.update(other._status)

    async def prefetch(self, event_ids: list[str]) -> None:
        ids = [e for e in dict.fromkeys(event_ids) if e not in self._status]
        if not ids:
            return
        stored = await self._store.get_pdus(ids)  # one read: the events with their statuses
        self._pdus.update(stored)
        for e in ids:
            self._status[e] = stored[e].status if e in stored else None

    async def statuses(self, event_ids: Any) -> dict[str, str]:
        ids = list(dict.fromkeys(event_ids))
        await self.prefetch(ids)
        return {e: s for e in ids if (s := self._status.get(e)) is not None}

    async def get_pdus(self, event_ids: Any) -> dict[str, StoredPdu]:
        ids = list(dict.fromkeys(event_ids))
        lacking = [e for e in ids if e not in self._pdus and self._status.get(e, "?") is not None]
        if lacking:
            got = await self._store.get_pdus(lacking)
            self._pdus.update(got)
            for e in lacking:
                if e not in got:
                    self._status.setdefault(e, None)
        return {e: self._pdus[e] for e in ids if e in self._pdus}


def referenced(events: list[Event]) -> list[str]:
    """The ids a batch looks up: the events themselves, their prev and auth events."""
    return [i for ev in events for i in (ev.event_id, *ev.prev_event_ids, *ev.auth_event_ids)]


async def prefetch(store: Any, events: list[Event]) -> PendingOverlay:
    """One read for every room of a transaction (each room's batch starts from it)."""
    known = PendingOverlay(store)
    await known.prefetch(referenced(events))
    return known


class RoomBatch:
    """Process one room's PDUs (in order) for :meth:`FederationEventHandler.on_room_pdus`."""

    def __init__(self, handler: FederationEventHandler, origin: str, known: PendingOverlay | None = None) -> None:
        self.handler = handler
        self.origin = origin
        self.overlay = PendingOverlay(handler.store)
        if known is not None:
            self.overlay.seed(known)
        self.view = copy.copy(handler)  # the same checks, reading through the overlay
        self.view.store = self.overlay
        self._waiting: list[tuple[int, Event, EventContext, defer.Deferred[Any]]] = []
        self._originals: list[Event] = []

    async def run(self, events: list[Event]) -> list[Outcome | BaseException]:
        out: list[Outcome | BaseException | None] = [None] * len(events)
        self._originals = events
        checked = [with_checked_hash(ev) for ev in events]
        await self.overlay.prefetch(referenced(checked))
        for i, ev in enumerate(checked):
            try:
                if not await self._try_fast(i, ev, out):
                    await self._drain(out)
                    out[i] = await self.handler.on_pdu(self.origin, events[i])
                    self.overlay.forget()  # it may have stored events (gaps, outliers) and committed itself
            except Exception as e:  # noqa: BLE001 - the PDU's own error, as on_pdu raises it
                out[i] = e
        await self._drain(out)
        return out  # type: ignore[return-value]

    async def _try_fast(self, i: int, ev: Event, out: list[Any]) -> bool:
        """Check ``ev`` against the head and hand it over without waiting; False: it needs the general path."""
        st = await self.overlay.statuses([ev.event_id, *ev.prev_event_ids, *ev.auth_event_ids])
        if ev.event_id in st and st[ev.event_id] != "outlier":
            out[i] = Outcome(ev.event_id, None)
            return True
        if len(ev.prev_event_ids) != 1 or st.get(ev.prev_event_ids[0]) != "accepted":
            return False  # a gap to fill, or a merge of forks: the general path
        if any(a not in st for a in ev.auth_event_ids):
            return False  # auth events to fetch
        prev = (await self.overlay.get_pdus(ev.prev_event_ids)).get(ev.prev_event_ids[0])
        async with self.handler.persister.turn(ev.room_id) as turn:
            head = turn.head
            if prev is None or list(head.extremities) != [prev.event.event_id] or not head.state_set \
                    or prev.state_after != head.state_set:
                return False  # not on top of the head as it stands: the general path checks it fully
            ctx = await self.view._context(self.origin, ev, head, {})
            if ctx.in_timeline and not ctx.after_is_current:
                return False  # cannot happen on this path; never hand over what the general path should decide
            if ctx.current is not None and ctx.current.new_set is None:
                # the set after it, worked out now so the next event's state before is known by id
                ctx.current.new_set = await self.handler.state.prepare_change(head.state_set, ctx.current.changes,
                                                                              ctx.current.removals)
            try:
                d = turn.submit(PersistItem(ev, context=ctx), can_rebuild=False)
            except Rebuild:
                return False
            after = turn.head.state_set if ctx.in_timeline else None
        self.overlay.add_pending(ev, ctx.status.value, head.state_set, after)
        self._waiting.append((i, ev, ctx, d))
        return True

    async def _drain(self, out: list[Any]) -> None:
        """Wait for everything handed over; an event whose write failed because an earlier one of its batch did
        goes through the general path again (it reads the room as committed)."""
        waiting, self._waiting = self._waiting, []
        retry: list[tuple[int, Event]] = []
        for i, ev, ctx, d in waiting:
            try:
                await d
                out[i] = Outcome(ev.event_id, ctx.status, ctx.reason)
            except (EventNotWritten, Rebuild):
                retry.append((i, ev))
            except Exception as e:  # noqa: BLE001
                out[i] = e
        if waiting:
            self.overlay.forget()
        for i, _ev in retry:
            try:
                out[i] = await self.handler.on_pdu(self.origin, self._originals[i])
            except Exception as e:  # noqa: BLE001
                out[i] = e

