"""Bodies of the session endpoints: ``POST /refresh``."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

from homeserver.api.models import Body


class RefreshBody(Body):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
