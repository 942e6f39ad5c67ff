"""Stories: posts that disappear after a while, shown to an audience the author picks per story.

Model (docs/stories.md): each author has one *story room* (room type ``org.sup.stories``,
private, the author its only member, ``m.room.retention`` saying how long stories live). A
story is an ``org.sup.story`` event in it, so it is signed, stored and (later) federated like
any event. Nobody else ever joins a story room, so no ordinary read path (``/sync``,
``/messages``, ``/context``, search, relations) can show a story to anyone but its author.
Viewers read stories only through this API, which checks the story's audience *when it is
read*: removing someone from a list, or unfriending them, hides the story from them at once.

Audiences: ``public`` (any user who asks), ``contacts`` (everyone on the author's contact
list), ``list`` (one named contact list), ``shared_rooms`` (anyone sharing a joined room).
Media in a story is downloadable only by the story's audience while it lives, and is deleted
after expiry unless something else uses it. Reactions are recorded for the author to see;
replies go to a direct chat between viewer and author.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable, Protocol

from homeserver.api.errors import Codes, Forbidden, MatrixError, NotFound
from homeserver.api.models.rooms import CreateRoomBody
from homeserver.api.models.stories import StoryPostBody
from homeserver.clock import Clock
from homeserver.events import get_room_version, redact_event_dict
from storage.stores.contacts import ContactStore
from storage.stores.stories import StoryRow, StoryStore

logger = logging.getLogger(__name__)

STORY_ROOM_TYPE = "org.sup.stories"
STORY_EVENT_TYPE = "org.sup.story"
FEED_LIMIT = 500
PURGE_BATCH = 100


class RoomCreator(Protocol):
    async def create_room(self, creator: str, body: CreateRoomBody) -> dict[str, Any]: ...


class EventSender(Protocol):
    async def send(self, room_id: str, sender: str, type: str, content: dict[str, Any]) -> tuple[str, int]: ...


class StoryMediaStore(Protocol):
    async def owner_of(self, media_id: str) -> str | None: ...

    async def delete(self, media_ids: list[str]) -> None: ...


JoinedRooms = Callable[[str], Awaitable[list[str]]]
GetEventJson = Callable[[str], Awaitable["dict[str, Any] | None"]]


class StoryAudience:
    """Who may see a story, decided when it is read (storage-only dependencies, so the media
    process can enforce it on downloads too)."""

    def __init__(self, store: StoryStore, contacts: ContactStore, joined_rooms: JoinedRooms, clock: Clock) -> None:
        self.store = store
        self.contacts = contacts
        self.joined_rooms = joined_rooms
        self.clock = clock

    async def can_see(self, viewer: str, story: StoryRow) -> bool:
        if viewer == story.author or story.audience == "public":
            return True
        if story.audience == "contacts":
            return await self.contacts.has_contact(story.author, viewer)
        if story.audience == "list":
            return viewer in await self.contacts.members_of(story.author, story.audience_list)
        if story.audience == "shared_rooms":
            mine = set(await self.joined_rooms(viewer))
            return bool(mine.intersection(await self.joined_rooms(story.author)))
        return False

    async def check_media_access(self, requester: str | None, server_name: str, media_id: str) -> None:
        """Media used by a live story is served only to the story's audience (never to an
        unauthenticated request); media of expired stories is refused until the purge deletes it."""
        mxc = f"mxc://{server_name}/{media_id}"
        stories = await self.store.live_with_media(mxc, self.clock.time_msec())
        if not stories and not await self.store.any_with_media(mxc):
            return
        if requester is not None:
            for story in stories:
                if await self.can_see(requester, story):
                    return
        raise NotFound("Media not found")


class StoriesHandler:
    def __init__(self, store: StoryStore, audience: StoryAudience, clock: Clock, server_name: str,
                 rooms: RoomCreator, sender: EventSender, joined_rooms: JoinedRooms, get_event_json: GetEventJson,
                 media: StoryMediaStore, default_lifetime_ms: int, max_lifetime_ms: int) -> None:
        self.store = store
        self.audience = audience
        self.clock = clock
        self.server_name = server_name
        self.rooms = rooms
        self.sender = sender
        self.joined_rooms = joined_rooms
        self.get_event_json = get_event_json
        self.media = media
        self.default_lifetime_ms = default_lifetime_ms
        self.max_lifetime_ms = max_lifetime_ms

    # ---- posting ----
    async def post(self, author: str, body: StoryPostBody) -> dict[str, Any]:
        content = body.content.event_content()
        audience, audience_list = body.audience.kind, (body.audience.list if body.audience.kind == "list" else None)
        lifetime = body.lifetime_ms if body.lifetime_ms is not None else self.default_lifetime_ms
        if not 60_000 <= lifetime <= self.max_lifetime_ms:
            raise MatrixError(400, Codes.INVALID_PARAM, f"lifetime_ms must be between 60000 and {self.max_lifetime_ms}")
        media = await self._own_media(author, content)
        room_id = await self._story_room(author)
        now = self.clock.time_msec()
        expires = now + lifetime
        content["org.sup.audience"] = {"kind": audience, **({"list": audience_list} if audience_list else {})}
        content["org.sup.expires_ts"] = expires
        event_id, _ = await self.sender.send(room_id, author, STORY_EVENT_TYPE, content)
        await self.store.add(StoryRow(event_id, author, room_id, now, expires, audience, audience_list, tuple(media)))
        return {"event_id": event_id, "expires_ts": expires}

    async def _own_media(self, author: str, content: dict[str, Any]) -> list[str]:
        """A story may only use media its author uploaded here (it is deleted when the story expires)."""
        url = content.get("url")
        if url is None:
            return []
        server, _, media_id = url[len("mxc://"):].partition("/")
        if server != self.server_name or not media_id or await self.media.owner_of(media_id) != author:
            raise Forbidden("A story can only use media you uploaded to this server")
        return [url]

    async def _story_room(self, author: str) -> str:
        existing = await self.store.get_story_room(author)
        if existing is not None:
            return existing
        created = await self.rooms.create_room(author, CreateRoomBody.model_validate({
            "preset": "private_chat",
            "name": "Stories",
            "creation_content": {"type": STORY_ROOM_TYPE},
            "initial_state": [
                {"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": "joined"}},
                {"type": "m.room.retention", "state_key": "", "content": {"max_lifetime": self.max_lifetime_ms}},
            ],
        }))
        return await self.store.set_story_room(author, created["room_id"])

    async def can_see(self, viewer: str, story: StoryRow) -> bool:
        return await self.audience.can_see(viewer, story)

    async def _visible_story(self, viewer: str, event_id: str) -> StoryRow:
        story = await self.store.get(event_id)
        # Not found, expired and not allowed look the same: no one learns a hidden story exists.
        if story is None or story.expires_ts <= self.clock.time_msec() or not await self.can_see(viewer, story):
            raise NotFound("Story not found")
        return story

    async def _render(self, story: StoryRow) -> dict[str, Any] | None:
        pdu = await self.get_event_json(story.event_id)
        if pdu is None:
            return None
        content = {k: v for k, v in (pdu.get("content") or {}).items() if k != "org.sup.audience"}
        return {"event_id": story.event_id, "author": story.author, "created_ts": story.created_ts,
                "expires_ts": story.expires_ts, "content": content}

    # ---- reading ----
    async def feed(self, viewer: str) -> dict[str, Any]:
        """Every live story the viewer may see, newest first, grouped by author."""
        by_author: dict[str, list[dict[str, Any]]] = {}
        for story in await self.store.live(self.clock.time_msec(), FEED_LIMIT):
            if story.author != viewer and await self.can_see(viewer, story):
                rendered = await self._render(story)
                if rendered is not None:
                    by_author.setdefault(story.author, []).append(rendered)
        return {"authors": [{"user_id": a, "stories": s} for a, s in by_author.items()]}

    async def user_stories(self, viewer: str, author: str) -> dict[str, Any]:
        out = []
        for story in await self.store.live(self.clock.time_msec(), FEED_LIMIT, author=author):
            if await self.can_see(viewer, story):
                rendered = await self._render(story)
                if rendered is not None:
                    out.append(rendered)
        return {"stories": out}

    async def view(self, viewer: str, event_id: str) -> dict[str, Any]:
        story = await self._visible_story(viewer, event_id)
        rendered = await self._render(story)
        if rendered is None:
            raise NotFound("Story not found")
        if viewer != story.author:
            await self.store.record_view(event_id, viewer, self.clock.time_msec())
        return rendered

    async def viewers(self, requester: str, event_id: str) -> dict[str, Any]:
        story = await self.store.get(event_id)
        if story is None or story.author != requester:
            raise NotFound("Story not found")
        return {"viewers": [{"user_id": v, "viewed_ts": ts, **({"reaction": r} if r else {})}
                            for v, ts, r in await self.store.viewers(event_id)]}

    async def react(self, viewer: str, event_id: str, key: str) -> None:
        story = await self._visible_story(viewer, event_id)
        if viewer == story.author:
            raise Forbidden("You cannot react to your own story")
        await self.store.record_reaction(event_id, viewer, key, self.clock.time_msec())

    async def reply(self, viewer: str, event_id: str, text: str) -> dict[str, Any]:
        """Send the reply as a message in a direct chat with the author (created on first reply)."""
        story = await self._visible_story(viewer, event_id)
        if viewer == story.author:
            raise Forbidden("You cannot reply to your own story")
        room_id = await self.store.get_reply_room(viewer, story.author)
        if room_id is None or room_id not in await self.joined_rooms(viewer):
            created = await self.rooms.create_room(viewer, CreateRoomBody(preset="trusted_private_chat", is_direct=True,
                                                                          invite=[story.author]))
            room_id = created["room_id"]
            await self.store.set_reply_room(viewer, story.author, room_id)
        content = {"msgtype": "m.text", "body": text,
                   "org.sup.story_reply": {"event_id": story.event_id, "author": story.author}}
        reply_id, _ = await self.sender.send(room_id, viewer, "m.room.message", content)
        return {"room_id": room_id, "event_id": reply_id}


class StoryPurger:
    """The background job: expired stories leave the index, their events are removed (the DAG
    tip is redacted in place instead), and their media is deleted unless something else uses it."""

    def __init__(self, store: StoryStore, media: StoryMediaStore, clock: Clock, room_version_of: Callable[[str], Awaitable[str]],
                 invalidate_events: Callable[[list[str]], None]) -> None:
        self.store = store
        self.media = media
        self.clock = clock
        self.room_version_of = room_version_of
        self.invalidate_events = invalidate_events

    async def run_once(self) -> int:
        total = 0
        now = self.clock.time_msec()
        for _ in range(1_000):  # bounded: at most 100k stories per run, in batches of 100
            batch = await self.store.take_expired(now, PURGE_BATCH)
            by_room: dict[str, list[str]] = {}
            for story in batch:
                by_room.setdefault(story.room_id, []).append(story.event_id)
            for room_id, ids in by_room.items():
                version = get_room_version(await self.room_version_of(room_id))

                def prune(raw: str, version: Any = version) -> str:
                    pdu = json.loads(raw)
                    pruned = redact_event_dict(pdu, version)
                    for k in ("event_id", "room_id"):
                        if k in pdu:
                            pruned[k] = pdu[k]
                    return json.dumps(pruned, ensure_ascii=False, separators=(",", ":"))

                await self.store.purge_story_events(room_id, ids, prune)
                self.invalidate_events(ids)
            total += len(batch)
            if len(batch) < PURGE_BATCH:
                break
        await self._purge_media(now)
        return total

    async def _purge_media(self, now: int) -> None:
        for _ in range(100):
            pending = await self.store.pending_media(PURGE_BATCH)
            if not pending:
                return
            doomed: list[str] = []
            for mxc in pending:
                if await self.store.live_with_media(mxc, now):
                    continue  # another live story still shows it
                if await self.store.media_used_outside_story_rooms(mxc):
                    continue  # sent in a room too: not the story's to delete
                doomed.append(mxc.rsplit("/", 1)[1])
            if doomed:
                await self.media.delete(doomed)
            await self.store.forget_pending_media(pending)
            if len(pending) < PURGE_BATCH:
                return
