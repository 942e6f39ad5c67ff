"""Stories area (docs/stories.md): the stories API and the expiry purge job.

Needs: core.auth, core.contacts (contacts area), core.room_creation, core.event_creation,
core.event_store, core.rooms_for_user, core.room_store, and the media repository (media area).
The media access check for story media is wired by the media area itself (it runs in the
media process too).
"""

from __future__ import annotations

import logging
from typing import Any

from homeserver.handlers.stories import StoriesHandler, StoryAudience, StoryPurger
from homeserver.rest.client.stories import StoriesServlet
from storage.stores.media import MediaStore
from storage.stores.stories import StoryStore
from workers.core import Core

logger = logging.getLogger(__name__)


class _StoryMedia:
    """The media repository as stories see it: who uploaded an id, and deleting ids."""

    def __init__(self, store: MediaStore, repo: Any) -> None:
        self._store = store
        self._repo = repo

    async def owner_of(self, media_id: str) -> str | None:
        media = await self._store.get_local_media(media_id)
        return None if media is None else media.user_id

    async def delete(self, media_ids: list[str]) -> None:
        if self._repo is not None:
            await self._repo.delete_local(media_ids)


def wire(core: Core) -> None:
    config = core.config.stories
    store = StoryStore(core.db)
    audience = StoryAudience(store, core.contacts, core.rooms_for_user, core.clock)
    media = _StoryMedia(MediaStore(core.db), getattr(core, "media_repository_for_stories", None))
    events = core.event_store

    async def event_json(event_id: str) -> dict[str, Any] | None:
        row = await events.get_event(event_id)
        return None if row is None else row.pdu

    async def room_version_of(room_id: str) -> str:
        return (await core.room_cache.get(room_id)).version.identifier

    handler = StoriesHandler(store, audience, core.clock, core.server_name, core.room_creation, core.event_creation,
                             core.rooms_for_user, event_json, media, config.lifetime, config.max_lifetime)
    core.on_resource("client", StoriesServlet(core.auth, handler).register)
    core.stories = handler

    purger = StoryPurger(store, media, core.clock, room_version_of, events.invalidate)
    core.story_purger = purger

    async def run() -> None:
        n = await purger.run_once()
        if n:
            logger.info("purged %d expired stories", n)

    core.every("stories_purge", run, config.purge_interval / 1000)
