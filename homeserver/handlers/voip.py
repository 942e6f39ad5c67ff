"""TURN credentials for VoIP (``GET /voip/turnServer``).

With ``voip.turn_shared_secret`` the credentials follow the common time-limited
scheme TURN servers implement (coturn ``use-auth-secret``): the username is
``<expiry unix seconds>:<user id>`` and the password is
``base64(HMAC-SHA1(secret, username))``. Without it, static
``voip.turn_username``/``voip.turn_password`` are handed out. With no URIs
configured the answer is an empty object, which the spec allows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from homeserver.api.errors import Codes, MatrixError
from homeserver.clock import Clock


class TurnHandler:
    def __init__(self, clock: Clock, uris: list[str], shared_secret: str | None, username: str | None,
                 password: str | None, lifetime_ms: int, allow_guests: bool) -> None:
        self.clock = clock
        self.uris = list(uris)
        self.shared_secret = shared_secret
        self.username = username
        self.password = password
        self.lifetime_ms = lifetime_ms
        self.allow_guests = allow_guests

    def credentials(self, user_id: str, is_guest: bool) -> dict[str, Any]:
        if not self.uris:
            return {}
        if is_guest and not self.allow_guests:
            raise MatrixError(403, Codes.GUEST_ACCESS_FORBIDDEN, "Guests may not use the TURN server")
        ttl_s = max(1, self.lifetime_ms // 1000)
        if self.shared_secret:
            expiry = self.clock.time_msec() // 1000 + ttl_s
            username = f"{expiry}:{user_id}"
            mac = hmac.new(self.shared_secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
            password = base64.b64encode(mac).decode("ascii")
        elif self.username and self.password:
            username, password = self.username, self.password
        else:
            return {}  # URIs but no way to authenticate: nothing usable to offer
        return {"username": username, "password": password, "uris": list(self.uris), "ttl": ttl_s}
