"""Contacts: a user's list of people, labels ("lists"), and who may invite or DM them.

Backed by its own tables (``storage/stores/contacts.py``) rather than account data, so that
policies, story audiences and directory ranking can query "is X a contact of Y" and "who is
on Y's list L" without loading and parsing a whole account-data blob. docs/contacts.md.
"""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import Codes, MatrixError, NotFound
from homeserver.api.models.contacts import LIST_NAME, ContactBody, ContactPolicyBody
from homeserver.clock import Clock
from homeserver.types import InvalidId, UserID
from storage.stores.contacts import Contact, ContactPolicy, ContactStore

MAX_CONTACTS = 5_000


def parse_user_id(value: str) -> str:
    try:
        return UserID.parse(value).to_string()
    except InvalidId as e:
        raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid user id: {e}") from None


def contact_json(c: Contact) -> dict[str, Any]:
    return {"user_id": c.contact_id, "nickname": c.nickname, "lists": c.lists, "mutual": c.mutual, "added_ts": c.added_ts}


class ContactsHandler:
    def __init__(self, store: ContactStore, clock: Clock, server_name: str) -> None:
        self.store = store
        self.clock = clock
        self.server_name = server_name

    async def list(self, user_id: str, label: str | None) -> dict[str, Any]:
        if label is not None and not LIST_NAME.match(label):
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid list name")
        return {"contacts": [contact_json(c) for c in await self.store.list(user_id, label)]}

    async def get(self, user_id: str, contact_id: str) -> dict[str, Any]:
        found = await self.store.list(user_id, contact_id=parse_user_id(contact_id))
        if not found:
            raise NotFound("Not a contact")
        return contact_json(found[0])

    async def put(self, user_id: str, contact_id: str, body: ContactBody) -> None:
        contact_id = parse_user_id(contact_id)
        if contact_id == user_id:
            raise MatrixError(400, Codes.INVALID_PARAM, "You cannot add yourself as a contact")
        nickname, lists = body.nickname, body.lists
        if not await self.store.has_contact(user_id, contact_id) and await self.store.count(user_id) >= MAX_CONTACTS:
            raise MatrixError(400, Codes.LIMIT_EXCEEDED, f"At most {MAX_CONTACTS} contacts")
        await self.store.upsert(user_id, contact_id, nickname, lists, self.clock.time_msec())

    async def delete(self, user_id: str, contact_id: str) -> None:
        if not await self.store.remove(user_id, parse_user_id(contact_id)):
            raise NotFound("Not a contact")

    async def lists(self, user_id: str) -> dict[str, Any]:
        return {"lists": await self.store.labels(user_id)}

    async def get_policy(self, user_id: str) -> dict[str, Any]:
        p = await self.store.get_policy(user_id)
        return {"invites": p.invites, "direct_messages": p.direct_messages}

    async def set_policy(self, user_id: str, body: ContactPolicyBody) -> None:
        current = await self.store.get_policy(user_id)
        values = {"invites": current.invites, "direct_messages": current.direct_messages, **body.changes()}
        await self.store.set_policy(user_id, ContactPolicy(**values))


class ContactInvitePolicy:
    """The invite check: a user whose policy says 'contacts' only accepts invites (or DMs)
    from people on their contact list. Applied with the other invite checks (invite blocking)."""

    def __init__(self, store: ContactStore, server_name: str) -> None:
        self._store = store
        self._suffix = ":" + server_name

    async def check(self, inviter: str, invitee: str, room_id: str, is_direct: bool = False) -> None:
        if inviter == invitee or not invitee.endswith(self._suffix):
            return
        policy = await self._store.get_policy(invitee)
        needs_contact = policy.invites == "contacts" or (is_direct and policy.direct_messages == "contacts")
        if needs_contact and not await self._store.has_contact(invitee, inviter):
            what = "direct messages" if is_direct and policy.invites != "contacts" else "invites"
            raise MatrixError(403, Codes.INVITE_BLOCKED, f"{invitee} accepts {what} only from their contacts")


class ContactRanking:
    """Directory ranking: the searcher's contacts first, otherwise the store's order."""

    def __init__(self, store: ContactStore) -> None:
        self._store = store

    async def rank(self, searcher: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        contacts = await self._store.contacts_among(searcher, [r["user_id"] for r in rows])
        if not contacts:
            return rows
        return sorted(rows, key=lambda r: r["user_id"] not in contacts)
