"""Helpers shared by the account servlets."""

from __future__ import annotations

from typing import Any

from homeserver.http.router import Handler, Router
from homeserver.http.routes import FAMILIES

CLIENT_PREFIXES = FAMILIES["client"]


def add_client_route(router: Router, method: str, path: str, handler: Handler, name: str) -> None:
    """Register ``path`` under the v3 prefix (and r0, which older clients still use)."""
    for prefix in CLIENT_PREFIXES:
        router.add(method, prefix + path, guard_params(handler), name)


def guard_params(handler: Handler) -> Handler:
    """Refuse path parameters containing NUL before they reach the database (400, never a 500)."""
    from homeserver.handlers.account_validation import reject_nul

    async def guarded(request: Any, **params: str) -> Any:
        for key, value in params.items():
            reject_nul(value, key)
        return await handler(request, **params)

    return guarded


def require_bool(body: dict[str, Any], key: str, default: bool) -> bool:
    from homeserver.api.errors import InvalidParam

    value = body.get(key, default)
    if not isinstance(value, bool):
        raise InvalidParam(f"{key!r} must be a boolean")
    return value
