"""The membership area's ``RemoteMembership`` over federation: joins, invites and leaves of rooms on other servers."""

from __future__ import annotations

from typing import Any

from federation.membership.invites import RemoteInviter, RemoteLeaver
from federation.membership.joins import RemoteJoiner
from federation.membership.knocks import RemoteKnocker
from storage.stores.federation_events import FederationEventStore


def _domain(identifier: str) -> str:
    return identifier.partition(":")[2]


class FederatedMembership:
    def __init__(self, joiner: RemoteJoiner, inviter: RemoteInviter, leaver: RemoteLeaver, store: FederationEventStore,
                 knocker: RemoteKnocker | None = None) -> None:
        self.knocker = knocker
        self.joiner = joiner
        self.inviter = inviter
        self.leaver = leaver
        self.store = store

    async def join(self, room_id: str, user_id: str, servers: list[str], content: dict[str, Any]) -> str:
        latest = await self.store.latest_membership(user_id, room_id)
        if latest is not None and latest[2] == "invite":
            servers = [*servers, _domain(latest[1])]  # the inviting server is in the room
        return await self.joiner.join(room_id, user_id, servers, content)

    async def knock(self, room_id: str, user_id: str, servers: list[str], content: dict[str, Any]) -> str:
        if self.knocker is None:
            raise NotImplementedError("knocks over federation are not wired")
        return await self.knocker.knock(room_id, user_id, servers, content)

    async def invite(self, room_id: str, sender: str, target: str, content: dict[str, Any]) -> str:
        return await self.inviter.invite(room_id, sender, target, content)

    async def leave_unknown_room(self, room_id: str, user_id: str) -> str | None:
        latest = await self.store.latest_membership(user_id, room_id)
        if latest is None or latest[2] not in ("invite", "knock"):
            return None
        invite = (await self.store.get_pdus([latest[0]])).get(latest[0])
        if invite is None:
            return None
        servers = [_domain(latest[1])]
        if _domain(room_id):
            servers.append(_domain(room_id))
        return await self.leaver.leave(room_id, user_id, invite.event, servers)
