"""Profile fields and the user directory's searchable rows."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from homeserver.types.caches import LruCache, drop_key
from storage.database import Database, Txn


def normalise_for_search(text: str) -> str:
    """Case-folded, accents stripped (NFKD minus combining marks): 'Élodie' → 'elodie'."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _localpart(user_id: str) -> str:
    return user_id[1:].split(":", 1)[0]


class _ProfileCache(LruCache):
    """Counts removals, so a read that raced a change does not put the old profile back."""

    generation = 0

    def pop(self, key: Any, *default: Any) -> Any:
        self.generation += 1
        return super().pop(key, *default)

    def clear(self) -> None:
        self.generation += 1
        super().clear()


class ProfileStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        # user -> {field: value}: every join, invite and createRoom copies the member's displayname/avatar into its
        # member event. Dropped on every change through this store (and by name from other processes).
        self._cache = _ProfileCache("profiles", 20_000, invalidate_on={"user": drop_key})

    @staticmethod
    def get_profile_txn(txn: Txn, user_id: str) -> dict[str, Any]:
        return {field: json.loads(value) for field, value in txn.query("SELECT field, value FROM profile_fields WHERE user_id = ? ORDER BY field", (user_id,))}

    @staticmethod
    def set_field_txn(txn: Txn, user_id: str, field: str, value: Any) -> None:
        txn.execute(
            "INSERT INTO profile_fields (user_id, field, value) VALUES (?, ?, ?) ON CONFLICT (user_id, field) DO UPDATE SET value = excluded.value",
            (user_id, field, json.dumps(value, ensure_ascii=False, separators=(",", ":"))),
        )
        if field in ("displayname", "avatar_url"):
            ProfileStore.refresh_directory_txn(txn, user_id)

    @staticmethod
    def refresh_directory_txn(txn: Txn, user_id: str) -> None:
        profile = ProfileStore.get_profile_txn(txn, user_id)
        name = profile.get("displayname") if isinstance(profile.get("displayname"), str) else None
        avatar = profile.get("avatar_url") if isinstance(profile.get("avatar_url"), str) else None
        search = normalise_for_search(_localpart(user_id)) + "\n" + normalise_for_search(name or "")
        txn.execute(
            "INSERT INTO user_directory (user_id, search_text, display_name, avatar_url) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET search_text = excluded.search_text, display_name = excluded.display_name, avatar_url = excluded.avatar_url",
            (user_id, search, name, avatar),
        )

    async def get_profile(self, user_id: str) -> dict[str, Any]:
        return await self.db.run("get_profile", self.get_profile_txn, user_id)

    async def get_profile_cached(self, user_id: str) -> dict[str, Any]:
        """The whole profile (a read-only transaction, then memory); the caller must not change the dict."""
        hit = self._cache.get_(user_id)
        if hit is not None:
            return hit
        generation = self._cache.generation
        profile = await self.db.read("get_profile", self.get_profile_txn, user_id)
        # An empty profile is not kept: a user being registered gets a displayname in the same transaction.
        if profile and self._cache.generation == generation:
            self._cache.put(user_id, profile)
        return profile

    def _changed(self, user_id: str) -> None:
        self._cache.invalidate(user_id)

    async def set_field(self, user_id: str, field: str, value: Any, max_total_bytes: int) -> bool:
        """Set one field; False (nothing written) if the whole profile would exceed ``max_total_bytes``."""

        def fn(txn: Txn) -> bool:
            profile = self.get_profile_txn(txn, user_id)
            profile[field] = value
            if len(json.dumps(profile, ensure_ascii=False, separators=(",", ":")).encode("utf-8")) > max_total_bytes:
                return False
            self.set_field_txn(txn, user_id, field, value)
            return True

        try:
            return await self.db.run("set_profile_field", fn)
        finally:
            self._changed(user_id)

    async def delete_field(self, user_id: str, field: str) -> None:
        def fn(txn: Txn) -> None:
            txn.execute("DELETE FROM profile_fields WHERE user_id = ? AND field = ?", (user_id, field))
            if field in ("displayname", "avatar_url"):
                self.refresh_directory_txn(txn, user_id)

        try:
            await self.db.run("delete_profile_field", fn)
        finally:
            self._changed(user_id)

    async def erase(self, user_id: str) -> None:
        def fn(txn: Txn) -> None:
            txn.execute("DELETE FROM profile_fields WHERE user_id = ?", (user_id,))
            txn.execute("DELETE FROM user_directory WHERE user_id = ?", (user_id,))

        try:
            await self.db.run("erase_profile", fn)
        finally:
            self._changed(user_id)

    async def remove_from_directory(self, user_id: str) -> None:
        await self.db.run("directory_remove", lambda txn: txn.execute("DELETE FROM user_directory WHERE user_id = ?", (user_id,)))

    async def search_directory(self, terms: list[str], prefix: str, limit: int) -> list[dict[str, Any]]:
        def fn(txn: Txn) -> list[dict[str, Any]]:
            where, params = [], []
            for term in terms:
                where.append("search_text LIKE ? ESCAPE '\\'")
                params.append("%" + _like_escape(term) + "%")
            sql = (
                "SELECT user_id, display_name, avatar_url FROM user_directory"
                + (" WHERE " + " AND ".join(where) if where else "")
                + " ORDER BY CASE WHEN search_text LIKE ? ESCAPE '\\' OR search_text LIKE ? ESCAPE '\\' THEN 0 ELSE 1 END,"
                " CASE WHEN display_name IS NULL THEN 1 ELSE 0 END, user_id LIMIT ?"
            )
            esc = _like_escape(prefix)
            rows = txn.query(sql, [*params, esc + "%", "%\n" + esc + "%", limit])
            out = []
            for user_id, name, avatar in rows:
                item: dict[str, Any] = {"user_id": user_id}
                if name is not None:
                    item["display_name"] = name
                if avatar is not None:
                    item["avatar_url"] = avatar
                out.append(item)
            return out

        return await self.db.run("search_directory", fn)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
