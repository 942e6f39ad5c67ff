"""User directory search over local users (localpart and display name, case- and accent-insensitive).

Which users a searcher may find is decided by a :class:`DirectoryVisibility`.
With ``user_directory.search_all_users`` every local user is visible. Otherwise
the spec's rule applies (users sharing a room with the searcher, or joined to
public / world-readable rooms); the rooms area provides that by calling
``set_visibility``. Until it does, the default is "all local users".
"""

from __future__ import annotations

from typing import Any, Protocol

from homeserver.api.models.read_markers import UserDirectorySearchBody
from storage.stores.profiles import ProfileStore, normalise_for_search

MAX_LIMIT = 100


class DirectoryVisibility(Protocol):
    async def filter_visible(self, searcher: str, candidates: list[str]) -> set[str]:
        """The subset of ``candidates`` (local user ids) that ``searcher`` may find."""
        ...


class DirectoryRanking(Protocol):
    async def rank(self, searcher: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``rows`` reordered for ``searcher`` (no rows added or removed)."""
        ...


class AllLocalUsers:
    async def filter_visible(self, searcher: str, candidates: list[str]) -> set[str]:
        return set(candidates)


class UserDirectoryHandler:
    def __init__(self, store: ProfileStore, search_all_users: bool) -> None:
        self.store = store
        self.search_all_users = search_all_users
        self._visibility: DirectoryVisibility = AllLocalUsers()
        self._ranking: DirectoryRanking | None = None

    def set_ranking(self, ranking: "DirectoryRanking") -> None:
        """Install a re-ranking of visible results (contacts first)."""
        self._ranking = ranking

    def set_visibility(self, visibility: DirectoryVisibility) -> None:
        """Install the room-based rule (ignored when search_all_users is on)."""
        self._visibility = visibility

    async def search(self, searcher: str, body: UserDirectorySearchBody) -> dict[str, Any]:
        term, limit = body.search_term, min(body.limit, MAX_LIMIT)
        norm = normalise_for_search(term.strip())
        terms = [t for t in norm.split() if t]
        if not terms or limit == 0:
            return {"results": [], "limited": False}
        fetch = limit + 1 if self.search_all_users else (limit + 1) * 5
        rows = await self.store.search_directory(terms, terms[0], fetch)
        if not self.search_all_users:
            visible = await self._visibility.filter_visible(searcher, [r["user_id"] for r in rows])
            rows = [r for r in rows if r["user_id"] in visible]
        if self._ranking is not None:
            rows = await self._ranking.rank(searcher, rows)
        return {"results": rows[:limit], "limited": len(rows) > limit}
