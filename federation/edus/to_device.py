"""To-device messages over federation (``m.direct_to_device``), exactly once.

Outbound, :class:`FederationToDevice` is the to-device handler's ``RemoteToDeviceSender``: ``outbox_txn`` writes
one durable EDU per destination into ``federation_edu_outbox`` inside the same transaction as the sender's own
to-device write (so a crash cannot lose the remote part), and ``committed`` wakes the destinations' queues.
Each EDU carries a fresh ``message_id``; the outbox row keeps it, so a retried transaction repeats it.

Inbound, :meth:`FederationToDevice.on_edu` accepts messages only from users of the origin server, for local users,
and hands them to ``deliver_local(..., message_id=)``, which drops a message id seen before from that sender.
"""

from __future__ import annotations

import secrets
from typing import Any, Callable, Protocol

from storage.database import Txn


class LocalDelivery(Protocol):
    async def deliver_local(self, sender: str, event_type: str, messages: dict[str, dict[str, Any]], message_id: str | None = None) -> None: ...


AddEdusTxn = Callable[[Txn, int, list[tuple[str, str, dict[str, Any]]]], None]


class FederationToDevice:
    def __init__(self, server_name: str, add_edus_txn: AddEdusTxn, wake: Callable[[str], None],
                 local: Callable[[], LocalDelivery | None]) -> None:
        self._server_name = server_name
        self._add = add_edus_txn
        self._wake = wake
        self._local = local  # the to-device handler, looked up at call time (the e2e area is wired later)

    # ---- outbound (RemoteToDeviceSender) ----
    def outbox_txn(self, txn: Txn, sender: str, event_type: str, remote: dict[str, dict[str, dict[str, Any]]], now_ms: int) -> None:
        edus = [(dest, "m.direct_to_device", {"sender": sender, "type": event_type, "message_id": secrets.token_hex(16), "messages": msgs})
                for dest, msgs in remote.items() if dest != self._server_name]
        self._add(txn, now_ms, edus)

    def committed(self, destinations: list[str]) -> None:
        for dest in destinations:
            self._wake(dest)

    async def send_to_device(self, sender: str, destination: str, event_type: str, messages: dict[str, dict[str, Any]]) -> None:
        raise NotImplementedError("the to-device handler uses outbox_txn/committed with this sender")

    # ---- inbound ----
    async def on_edu(self, origin: str, content: dict[str, Any]) -> None:
        sender, event_type, message_id, messages = content.get("sender"), content.get("type"), content.get("message_id"), content.get("messages")
        if not isinstance(sender, str) or sender.partition(":")[2] != origin:
            return  # only the sender's own server may send for it
        if not isinstance(event_type, str) or not event_type or not isinstance(messages, dict):
            return
        if not isinstance(message_id, str) or not message_id or len(message_id) > 255:
            message_id = None
        local = {u: d for u, d in messages.items() if isinstance(u, str) and u.partition(":")[2] == self._server_name and isinstance(d, dict)}
        target = self._local()
        if local and target is not None:
            await target.deliver_local(sender, event_type, local, message_id=message_id)
