"""Response headers for served media: type, disposition, and the browser-safety set.

Only types the spec lists as safe to serve inline get ``inline``; everything
else is ``attachment`` so a browser never renders uploaded HTML/SVG/JS in the
server's origin. A restrictive Content-Security-Policy and ``nosniff`` back that up.
"""

from __future__ import annotations

import re
from urllib.parse import quote

# The spec's "serving inline content" list.
INLINE_SAFE_TYPES = frozenset(
    {
        "text/css", "text/plain", "text/csv",
        "application/json", "application/ld+json",
        "image/jpeg", "image/gif", "image/png", "image/apng", "image/webp", "image/avif",
        "video/mp4", "video/webm", "video/ogg", "video/quicktime",
        "audio/mp4", "audio/webm", "audio/aac", "audio/mpeg", "audio/ogg", "audio/wave", "audio/wav",
        "audio/x-wav", "audio/x-pn-wav", "audio/flac", "audio/x-flac",
    }
)

CONTENT_SECURITY_POLICY = (
    "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; "
    "media-src 'self'; object-src 'self'; frame-ancestors 'none'"
)

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MIME_RE = re.compile(rf"^{_TOKEN}/{_TOKEN}(\s*;\s*{_TOKEN}=({_TOKEN}|\"[^\"\\\r\n]*\"))*$")
_FILENAME_SAFE = re.compile(r"^[\x20-\x7e]+$")

DEFAULT_TYPE = "application/octet-stream"
MAX_CONTENT_TYPE_LENGTH = 255
MAX_FILENAME_LENGTH = 255


def clean_content_type(value: str | None) -> str:
    """A syntactically valid media type, else ``application/octet-stream``."""
    if not value:
        return DEFAULT_TYPE
    value = value.strip()
    if len(value) > MAX_CONTENT_TYPE_LENGTH or not _MIME_RE.match(value):
        return DEFAULT_TYPE
    return value


def base_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def is_inline_safe(content_type: str) -> bool:
    return base_type(content_type) in INLINE_SAFE_TYPES


def content_disposition(content_type: str, filename: str | None, force_inline: bool = False) -> str:
    """``inline``/``attachment`` with a safely encoded filename (quoted ASCII or RFC 5987 UTF-8)."""
    disposition = "inline" if force_inline or is_inline_safe(content_type) else "attachment"
    if not filename:
        return disposition
    if _FILENAME_SAFE.match(filename) and '"' not in filename and "\\" not in filename:
        return f'{disposition}; filename="{filename}"'
    return f"{disposition}; filename*=utf-8''{quote(filename, safe='')}"


def valid_filename(name: str) -> bool:
    """Upload names: non-empty, bounded, no control characters."""
    return 0 < len(name) <= MAX_FILENAME_LENGTH and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in name)


def download_headers(content_type: str, filename: str | None, cache_private: bool, force_inline: bool = False) -> dict[str, str]:
    return {
        "Content-Disposition": content_disposition(content_type, filename, force_inline),
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Cache-Control": ("private" if cache_private else "public") + ", max-age=86400, immutable",
    }
