"""``POST /_sup/livekit/sfu/get``: the request Element Call sends to a LiveKit JWT service (docs/calls.md)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from homeserver.api.models import Body

ShortStr = Annotated[str, Field(min_length=1, max_length=1024)]


class OpenIdTokenSpec(Body):
    """The caller's OpenID token (``/openid/request_token``'s answer; ``token_type`` and ``expires_in`` ignored)."""

    access_token: ShortStr
    matrix_server_name: ShortStr


class SfuTokenRequest(Body):
    room: ShortStr
    openid_token: OpenIdTokenSpec
    device_id: Annotated[str, Field(max_length=255)] = ""


__all__ = ["OpenIdTokenSpec", "SfuTokenRequest"]
