"""Device-list and cross-signing key updates over federation (``m.device_list_update``, ``m.signing_key_update``).

Outbound, :class:`FederationDeviceLists` is the device-list handler's ``remote_outbox``: inside the transaction that
records a local user's device-list change it writes one durable EDU per server sharing a room with the user
(``federation_edu_outbox``). A device update carries ``stream_id`` (the change's device-list position),
``prev_id`` (the user's previous change position, so receivers can see gaps and resync with
``/user/devices``), the device's current keys, or ``deleted: true``. A cross-signing upload sends
``m.signing_key_update`` with the master and self-signing keys. After the commit the destinations are woken.

Inbound, both EDU types (only for users of the origin server) go to the remote device-list cache
(``remote_device_lists.py``: applied when the ``prev_id`` chain continues, a resync when a gap is seen) and record
a device-list change of the remote user, so local clients sharing a room see it in ``device_lists.changed``.
"""

from __future__ import annotations

from typing import Any, Callable

from storage.database import Txn
from storage.stores.e2e_keys import E2EKeyStore
from storage.stores.federation_outbound import FederationOutboundStore


class FederationDeviceLists:
    def __init__(self, server_name: str, wake: Callable[[str], None], device_lists: Callable[[], Any],
                 tracker: Any = None) -> None:
        self._server_name = server_name
        self._wake = wake
        self._device_lists = device_lists  # looked up at call time (the e2e area is wired after federation)
        self._tracker = tracker  # RemoteDeviceLists: the persistent cache of remote users' device lists

    # ---- outbound (remote_outbox) ----
    def outbox_txn(self, txn: Txn, user_id: str, device_id: str | None, pos: int, kind: str, now_ms: int) -> list[str]:
        destinations = sorted(FederationOutboundStore.servers_sharing_rooms_txn(txn, user_id) - {self._server_name, ""})
        if not destinations:
            return []
        if kind == "signing_key":
            cross = E2EKeyStore.get_cross_signing_keys_txn(txn, user_id)
            content: dict[str, Any] = {"user_id": user_id}
            if "master" in cross:
                content["master_key"] = cross["master"]
            if "self_signing" in cross:
                content["self_signing_key"] = cross["self_signing"]
            edu_type = "m.signing_key_update"
        else:
            if device_id is None:
                return []  # no device named: receivers learn of it at their next resync
            prev = FederationOutboundStore.previous_device_list_stream_txn(txn, user_id, pos)
            content = {"user_id": user_id, "device_id": device_id, "stream_id": pos, "prev_id": [prev] if prev is not None else []}
            keys = E2EKeyStore.get_device_keys_txn(txn, user_id, device_id)
            if keys is not None:
                content["keys"] = keys
            elif not E2EKeyStore.device_exists_txn(txn, user_id, device_id):
                content["deleted"] = True
            edu_type = "m.device_list_update"
        FederationOutboundStore.add_edus_txn(txn, now_ms, [(d, edu_type, content) for d in destinations])
        return destinations

    def committed(self, destinations: list[str]) -> None:
        for dest in destinations:
            self._wake(dest)

    # ---- inbound ----
    async def on_device_list_update(self, origin: str, content: dict[str, Any]) -> None:
        if not _from(origin, content):
            return
        if self._tracker is not None and not await self._tracker.on_device_list_update(origin, content):
            return  # already covered by the cached list
        await self._changed(content["user_id"])

    async def on_signing_key_update(self, origin: str, content: dict[str, Any]) -> None:
        if not _from(origin, content):
            return
        if self._tracker is not None:
            await self._tracker.on_signing_key_update(origin, content)
        await self._changed(content["user_id"])

    async def _changed(self, user_id: str) -> None:
        handler = self._device_lists()
        if handler is not None:
            await handler.mark_changed(user_id)


def _from(origin: str, content: Any) -> bool:
    """The EDU is about a user of the server that sent it."""
    user_id = content.get("user_id") if isinstance(content, dict) else None
    return isinstance(user_id, str) and user_id.startswith("@") and user_id.partition(":")[2] == origin
