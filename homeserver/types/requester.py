"""Who is making a request, as established by access-token authentication."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RequestInfo:
    """What per-request checks may know of the HTTP request (handlers never see the request itself)."""

    method: str
    path: str
    client_ip: str


@dataclass(frozen=True)
class Requester:
    user_id: str
    device_id: str | None
    access_token_id: int | None = None
    is_admin: bool = False
    is_guest: bool = False
