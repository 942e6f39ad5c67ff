"""Device-list and cross-signing key updates over federation (``m.device_list_update``, ``m.signing_key_update``).

Outbound, :class:`FederationDeviceLists` is the device-list handler's ``remote_outbox``: inside the transaction that
records a local user's device-list change it writes one durable EDU per server sharing a room with the user
(``federation_edu_outbox``). A device update carries ``stream_id`` (the change's device-list position),
``prev_id`` (the user's previous change position, so receivers can see gaps and resync with
``/user/devices``), the device's current keys, or ``deleted: true``. A cross-signing upload sends
``m.signing_key_update`` with the master and self-signing keys. After the commit the destinations are woken.

Inbound, both EDU types (only for users of the origin server) record a device-list change of the remote user,
so local clients sharing a room see it in ``device_lists.changed`` and refetch the keys (``/keys/query`` goes to
the user's server: there is no remote device-list cache yet).
"""

from __future__ import annotations

from typing import Any, Callable

from storage.database import Txn
from storage.stores.e2e_keys import E2EKeyStore
from storage.stores.federation_outbound import FederationOutboundStore


class FederationDeviceLists:
    def __init__(self, server_name: str, wake: Callable[[str], None], device_lists: Callable[[], Any],
                 on_remote_change: Callable[[str], None] | None = None) -> None:
        self._server_name = server_name
        self._wake = wake
        self._device_lists = device_lists  # looked up at call time (the e2e area is wired after federation)
        self._on_remote_change = on_remote_change  # drops the remote user's cached keys

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
        await self._changed(origin, content.get("user_id"))

    async def on_signing_key_update(self, origin: str, content: dict[str, Any]) -> None:
        await self._changed(origin, content.get("user_id"))

    async def _changed(self, origin: str, user_id: Any) -> None:
        if not isinstance(user_id, str) or not user_id.startswith("@") or user_id.partition(":")[2] != origin:
            return
        if self._on_remote_change is not None:
            self._on_remote_change(user_id)
        handler = self._device_lists()
        if handler is not None:
            await handler.mark_changed(user_id)

