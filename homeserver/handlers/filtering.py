"""Uploading, fetching and resolving sync filters (``core.filtering``)."""

from __future__ import annotations

import json
from typing import Any

from homeserver.api.errors import BadJson, Forbidden, InvalidParam, NotFound
from homeserver.sync.filter import DEFAULT_FILTER, Filter
from storage.stores.filters import FilterStore

CACHE_SIZE = 10_000
MAX_FILTER_BYTES = 64 * 1024


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class FilteringHandler:
    def __init__(self, store: FilterStore, server_name: str) -> None:
        self._store = store
        self._server_name = server_name
        self._cache: dict[tuple[str, int], Filter] = {}

    def _check_user(self, requester: str, user_id: str) -> None:
        if requester != user_id:
            raise Forbidden("You cannot access the filters of another user")

    async def create(self, requester: str, user_id: str, body: dict[str, Any]) -> str:
        self._check_user(requester, user_id)
        Filter.parse(body)  # validate (400 on anything malformed)
        text = _canonical(body)
        if len(text.encode("utf-8")) > MAX_FILTER_BYTES:
            raise InvalidParam("Filter is too large")
        return str(await self._store.add_filter(user_id, text))

    async def get_json(self, requester: str, user_id: str, filter_id: str) -> dict[str, Any]:
        self._check_user(requester, user_id)
        fid = self._parse_id(filter_id, NotFound("No such filter"))
        text = await self._store.get_filter(user_id, fid)
        if text is None:
            raise NotFound("No such filter")
        return json.loads(text)

    async def resolve(self, user_id: str, param: str | None) -> Filter:
        """The ``filter`` query parameter of /sync: inline JSON (starts with ``{``) or a filter id."""
        if param is None or param == "":
            return DEFAULT_FILTER
        if param.lstrip().startswith("{"):
            try:
                value = json.loads(param)
            except ValueError:
                raise BadJson("The filter parameter is not valid JSON") from None
            return Filter.parse(value)
        fid = self._parse_id(param, InvalidParam("Unknown filter id"))
        cached = self._cache.get((user_id, fid))
        if cached is not None:
            return cached
        text = await self._store.get_filter(user_id, fid)
        if text is None:
            raise InvalidParam("Unknown filter id")
        parsed = Filter.parse(json.loads(text))
        if len(self._cache) >= CACHE_SIZE:
            self._cache.pop(next(iter(self._cache)))
        self._cache[(user_id, fid)] = parsed
        return parsed

    @staticmethod
    def _parse_id(value: str, error: Exception) -> int:
        if not (value.isascii() and value.isdigit()) or len(value) > 18:
            raise error
        return int(value)
