"""Who is making a request, as established by access-token authentication."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Requester:
    user_id: str
    device_id: str | None
    access_token_id: int | None = None
    is_admin: bool = False
    is_guest: bool = False
