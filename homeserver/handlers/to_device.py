"""Send-to-device messages: validated, expanded (``*``), stored per recipient device, delivered by sync once."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from canonicaljson import encode_canonical_json

from homeserver.api.errors import InvalidParam, LimitExceeded, TooLarge
from homeserver.api.models.to_device import SendToDeviceBody
from homeserver.clock import Clock
from homeserver.notifier import Notifier
from homeserver.types.requester import Requester
from storage.database import Database
from storage.stores.e2e_keys import E2EKeyStore
from storage.stores.to_device import InboxFull
from storage.stores.to_device import ToDeviceStore
from storage.streams import StreamIdGenerator

logger = logging.getLogger(__name__)

MAX_EVENT_TYPE_LEN = 255
MAX_TXN_ID_LEN = 255


class RemoteToDeviceSender(Protocol):
    """Federation fills this in (m.direct_to_device EDUs)."""

    async def send_to_device(self, sender: str, destination: str, event_type: str, messages: dict[str, dict[str, Any]]) -> None: ...


class NoFederationToDevice:
    async def send_to_device(self, sender: str, destination: str, event_type: str, messages: dict[str, dict[str, Any]]) -> None:
        logger.info("to-device messages for %s dropped: federation is not available", destination)


def is_user_id(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("@") and ":" in value[2:] and len(value) <= 255


def server_of(user_id: str) -> str:
    return user_id.split(":", 1)[1]


class ToDeviceHandler:
    def __init__(
        self,
        db: Database,
        store: ToDeviceStore,
        stream: StreamIdGenerator,
        notifier: Notifier,
        clock: Clock,
        server_name: str,
        max_message_size: int,
        remote: RemoteToDeviceSender | None = None,
        per_sender_max: int | None = None,
        inbox_max: int | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.stream = stream
        self.notifier = notifier
        self.clock = clock
        self.server_name = server_name
        self.max_message_size = max_message_size
        self.remote: RemoteToDeviceSender = remote or NoFederationToDevice()
        self.per_sender_max = per_sender_max  # undelivered messages one sender may queue for one device
        self.inbox_max = inbox_max  # undelivered messages one device may hold in all

    async def send(self, requester: Requester, event_type: str, txn_id: str, body: SendToDeviceBody) -> None:
        if not event_type or len(event_type) > MAX_EVENT_TYPE_LEN:
            raise InvalidParam("Invalid event type")
        if not txn_id or len(txn_id) > MAX_TXN_ID_LEN:
            raise InvalidParam("Invalid transaction id")
        local: dict[str, dict[str, str]] = {}
        remote: dict[str, dict[str, dict[str, Any]]] = {}
        for user_id, by_device in body.messages.items():
            for device_id, content in by_device.items():
                encoded = encode_canonical_json(content)
                if len(encoded) > self.max_message_size:
                    raise TooLarge(f"A to-device message is larger than {self.max_message_size} bytes")
                if server_of(user_id) == self.server_name:
                    local.setdefault(user_id, {})[device_id] = encoded.decode("utf-8")
                else:
                    remote.setdefault(server_of(user_id), {}).setdefault(user_id, {})[device_id] = content
        # the spec scopes a txn id to the device and the endpoint (/sendToDevice/{eventType}/{txnId}): the same
        # id with another event type is a new request; the length prefix keeps the key unambiguous
        txn_id = f"{len(event_type)}:{event_type}{txn_id}"
        if await self.store.txn_seen(requester.user_id, requester.device_id, txn_id):
            return  # idempotent retry
        rows = await self._expand(local)
        now = self.clock.time_msec()
        # a durable federation sender writes its outbox in this same transaction: no loss between the two
        durable = getattr(self.remote, "outbox_txn", None) if remote else None
        also = (lambda txn: durable(txn, requester.user_id, event_type, remote, now)) if durable is not None else None
        pos = self.stream.allocate()
        try:
            stored = await self.store.add_messages(requester.user_id, requester.device_id, txn_id, pos, event_type, rows, now,
                                                   also, self.per_sender_max, self.inbox_max)
        except InboxFull as e:
            raise LimitExceeded(60_000, f"{e}; try again once they are delivered") from None
        finally:
            self.stream.finish(pos)
        if not stored:
            return
        recipients = {u for u, _, _ in rows}
        if recipients:
            self.notifier.notify("to_device", pos, users=recipients)
        if durable is not None:
            self.remote.committed(list(remote))  # type: ignore[attr-defined]
            return
        for destination, msgs in remote.items():
            try:
                await self.remote.send_to_device(requester.user_id, destination, event_type, msgs)
            except Exception:
                logger.exception("queueing to-device messages for %s failed", destination)

    async def _expand(self, local: dict[str, dict[str, str]]) -> list[tuple[str, str, str]]:
        """(user, device, content) rows for existing devices; ``*`` means every device, a named device wins over ``*``."""
        if not local:
            return []

        def fn(txn: Any) -> list[tuple[str, str, str]]:
            rows: list[tuple[str, str, str]] = []
            for user_id, by_device in local.items():
                devices = set(E2EKeyStore.device_ids_txn(txn, user_id))
                chosen: dict[str, str] = {}
                if "*" in by_device:
                    chosen = {d: by_device["*"] for d in devices}
                for device_id, content in by_device.items():
                    if device_id != "*" and device_id in devices:
                        chosen[device_id] = content
                rows.extend((user_id, d, c) for d, c in chosen.items())
            return rows

        return await self.db.run("to_device_expand", fn)

    async def deliver_local(self, sender: str, event_type: str, messages: dict[str, dict[str, Any]], message_id: str | None = None) -> None:
        """Store messages that arrived over federation (or from the server itself) for local devices.

        With ``message_id`` (federation), a message seen before from the same sender is dropped: exactly once."""
        local = {
            u: {d: encode_canonical_json(c).decode("utf-8") for d, c in devs.items() if isinstance(c, dict)}
            for u, devs in messages.items()
            if is_user_id(u) and server_of(u) == self.server_name and isinstance(devs, dict)
        }
        rows = await self._expand(local)
        if not rows:
            return
        txn_id = f"federation:{message_id}" if message_id else None
        with self.stream.next() as pos:
            try:
                stored = await self.store.add_messages(sender, None, txn_id, pos, event_type, rows, self.clock.time_msec(),
                                                       None, self.per_sender_max, self.inbox_max)
            except InboxFull as e:
                logger.warning("to-device messages from %s dropped: %s", sender, e)
                return
        if not stored:
            return
        self.notifier.notify("to_device", pos, users={u for u, _, _ in rows})

    # ---- the API sync uses ----
    async def get_to_device_messages(self, user_id: str, device_id: str, since_pos: int, until_pos: int, limit: int = 100) -> tuple[list[dict[str, Any]], int]:
        """Messages for one device in (since, until], oldest first, at most ``limit``.

        Returns (events, last_pos): ``last_pos`` is the position the client has
        now seen, ``until_pos`` when everything fitted, else the last returned one.
        """
        if until_pos <= since_pos:
            return [], since_pos
        rows = await self.store.get_messages(user_id, device_id, since_pos, until_pos, limit)
        if len(rows) >= limit:
            return [e for _, e in rows], rows[-1][0]
        return [e for _, e in rows], until_pos

    async def delete_to_device_messages(self, user_id: str, device_id: str, up_to_pos: int) -> int:
        """The client acknowledged everything up to ``up_to_pos`` (its next ``since``): delete it."""
        if up_to_pos <= 0:
            return 0
        return await self.store.delete_messages(user_id, device_id, up_to_pos)

    def current_position(self) -> int:
        return self.stream.current()

    async def cleanup(self, expiry_ms: int, txn_retention_ms: int) -> int:
        now = self.clock.time_msec()
        return await self.store.cleanup(now - expiry_ms, now - txn_retention_ms)
