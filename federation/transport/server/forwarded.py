"""A federation request that another process of the deployment received, authenticated and forwarded here.

What a servlet reads of a request (the JSON body, the query arguments, the verified origin) without the
HTTP connection: the ``federation_inbound`` worker checked the X-Matrix signature and the room's ACL, parsed the
body, and sent them over the internal API; the process that owns the write runs the same servlet method.
"""

from __future__ import annotations

import json
from typing import Any

from homeserver.api.errors import BadJson
from homeserver.http.request import SupRequest


class ForwardedRequest(SupRequest):
    def __init__(self, name: str, params: dict[str, str], args: dict[str, list[str]], body: Any, origin: str | None) -> None:
        # deliberately not SupRequest.__init__: there is no twisted request behind this one
        self.raw = None
        self.path = name
        self.params = dict(params)
        self.request_id = "fwd"
        self.method = "PUT" if body is not None else "GET"
        self.requester = None
        self.origin = origin
        self._body = b"" if body is None else json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        self.max_body = len(self._body) + 1
        self._json_cache = body
        self._args = {str(k): [str(v) for v in vs] for k, vs in (args or {}).items() if isinstance(vs, list)}

    def header(self, name: str) -> str | None:
        return None

    @property
    def client_ip(self) -> str:
        return "internal"

    def content(self) -> bytes:
        return self._body

    def json(self) -> dict[str, Any]:
        if not isinstance(self._json_cache, dict):
            raise BadJson("Content must be a JSON object")
        return self._json_cache
