"""Server ACLs (``m.room.server_acl``): may a server take part in a room? Pure: no I/O.

Offers :func:`server_allowed(server_name, acl_content)`. Per the spec: the port is ignored; with
``allow_ip_literals`` false (default true) IP-literal names are denied; a ``deny`` glob match denies; otherwise an
``allow`` glob match allows and no match denies (a missing ``allow`` allows nobody). Globs use ``*`` and ``?``
and match case-insensitively (the linear-time matcher of ``homeserver.types.glob``: no regex from room state). Entries that are not strings are ignored. No ACL content at all allows everyone.
Use it on every PDU, EDU and room-scoped federation request (see ``federation.transport.server.routes``).
"""

from __future__ import annotations

from typing import Any

from homeserver.http.outbound import ip_literal
from homeserver.types.glob import glob_matches


def _host(server_name: str) -> str:
    if server_name.startswith("["):
        end = server_name.find("]")
        return server_name[: end + 1] if end > 0 else server_name
    return server_name.rsplit(":", 1)[0] if server_name.count(":") == 1 else server_name


def _matches(host: str, patterns: Any) -> bool:
    if not isinstance(patterns, list):
        return False
    return any(isinstance(p, str) and glob_matches(p, host, classes=False) for p in patterns)


def server_allowed(server_name: str, acl_content: dict[str, Any] | None) -> bool:
    if acl_content is None:
        return True
    host = _host(server_name)
    allow_ip = acl_content.get("allow_ip_literals", True)
    if allow_ip is False and ip_literal(host) is not None:
        return False
    if _matches(host, acl_content.get("deny", [])):
        return False
    return _matches(host, acl_content.get("allow", []))
