"""The one table of configuration options: path, type, default and doc.

The sample config, validation and ``SUP_`` environment overrides are all
generated from this table, so an option exists in exactly one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from homeserver.types.ip_ranges import DEFAULT_BLOCKLIST


class ConfigError(Exception):
    """A bad configuration value; the message names the option."""


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|y)?\s*$")
_DURATION_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000, "y": 31_536_000_000}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_duration_ms(value: Any) -> int:
    """``500``/``"500ms"``/``"10s"``/``"5m"``/``"1h"``/``"7d"`` → milliseconds (plain numbers are ms)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 5m or 7d")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("must not be negative")
        return int(value)
    m = _DURATION_RE.match(str(value))
    if not m:
        raise ValueError("expected a duration like 30s, 5m or 7d")
    return int(float(m.group(1)) * _DURATION_UNITS_MS[m.group(2) or "ms"])


def parse_size(value: Any) -> int:
    """``1024``/``"50M"``/``"1GiB"`` → bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size like 50M or 1G")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must not be negative")
        return value
    m = _SIZE_RE.match(str(value))
    if not m:
        raise ValueError("expected a size like 50M or 1G")
    unit = (m.group(2) or "").lower()[:1]
    return int(float(m.group(1)) * _SIZE_UNITS[unit])


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1"):
        return True
    if isinstance(value, str) and value.lower() in ("false", "no", "off", "0"):
        return False
    raise ValueError("expected true or false")


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("expected an integer")
    try:
        return int(value)
    except ValueError:
        raise ValueError("expected an integer") from None


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError("expected a number") from None


def _str(value: Any) -> str:
    if isinstance(value, (dict, list)):
        raise ValueError("expected a string")
    return "" if value is None else str(value)


def _opt_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return _str(value)


def _opt_port(value: Any) -> int | None:
    if value is None or value == "":
        return None
    port = _int(value)
    if not 0 < port < 65536:
        raise ValueError("expected a TCP port (1-65535)")
    return port


def _str_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of strings")
    return list(value)


def _enum(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if value not in choices:
            raise ValueError("expected one of " + ", ".join(choices))
        return str(value)

    return parse


def _positive(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        out = parse(value)
        if out <= 0:
            raise ValueError("must be greater than zero")
        return out

    return check


def _non_negative(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        out = parse(value)
        if out < 0:
            raise ValueError("must not be negative")
        return out

    return check


def _oembed_providers(value: Any) -> list[dict[str, str]]:
    """``url_preview.oembed_providers``: a list of {url_pattern (a glob over page URLs), endpoint (http(s) URL)}."""
    if not isinstance(value, list):
        raise ValueError("expected a list of {url_pattern, endpoint}")
    out = []
    for item in value:
        if not isinstance(item, dict) or set(item) != {"url_pattern", "endpoint"} \
                or not all(isinstance(v, str) and v for v in item.values()) or not item["endpoint"].startswith(("http://", "https://")):
            raise ValueError("each provider is {url_pattern: glob, endpoint: http(s) URL}")
        out.append({"url_pattern": item["url_pattern"], "endpoint": item["endpoint"]})
    return out


def _support_contacts(value: Any) -> list[dict[str, str]]:
    """``support.contacts``: a list of {role, matrix_id?, email_address?} (at least one of the two)."""
    if not isinstance(value, list):
        raise ValueError("expected a list of contacts")
    out: list[dict[str, str]] = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("role"), str) or not item["role"]:
            raise ValueError("each contact needs a role (m.role.admin, m.role.security or a namespaced role)")
        contact = {"role": item["role"]}
        for key in ("matrix_id", "email_address"):
            if item.get(key) is not None:
                if not isinstance(item[key], str) or not item[key]:
                    raise ValueError(f"{key} must be a non-empty string")
                contact[key] = item[key]
        if set(item) - {"role", "matrix_id", "email_address"}:
            raise ValueError("unknown contact field " + ", ".join(sorted(set(item) - {"role", "matrix_id", "email_address"})))
        if "matrix_id" not in contact and "email_address" not in contact:
            raise ValueError("each contact needs a matrix_id or an email_address")
        out.append(contact)
    return out


LISTENER_RESOURCES = ("client", "federation", "media", "metrics", "keys", "admin")


def _listeners(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise ValueError("expected a non-empty list of listeners")
    out = []
    allowed = {"bind_address", "port", "resources", "tls_certificate", "tls_private_key", "x_forwarded"}
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise ValueError(f"listener {i} must be a mapping")
        unknown = set(item) - allowed
        if unknown:
            raise ValueError(f"listener {i} has unknown key {sorted(unknown)[0]!r}")
        port = item.get("port")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"listener {i} needs a port between 0 and 65535")
        resources = item.get("resources", ["client"])
        if not isinstance(resources, list) or not resources:
            raise ValueError(f"listener {i} needs a non-empty resources list")
        for r in resources:
            if r not in LISTENER_RESOURCES:
                raise ValueError(f"listener {i} has unknown resource {r!r} (known: {', '.join(LISTENER_RESOURCES)})")
        cert, key = item.get("tls_certificate"), item.get("tls_private_key")
        if bool(cert) != bool(key):
            raise ValueError(f"listener {i} needs both tls_certificate and tls_private_key")
        out.append(
            {
                "bind_address": str(item.get("bind_address", "127.0.0.1")),
                "port": port,
                "resources": list(resources),
                "tls_certificate": cert,
                "tls_private_key": key,
                "x_forwarded": _bool(item.get("x_forwarded", False)),
            }
        )
    return out


def _gc_thresholds(value: Any) -> list[int]:
    if not isinstance(value, list) or len(value) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        raise ValueError("expected three non-negative integers [gen0, gen1, gen2]")
    return list(value)


def _old_keys(value: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict):
        raise ValueError("expected a mapping of key id to {key, expired_ts}")
    for key_id, info in value.items():
        if not isinstance(info, dict) or not isinstance(info.get("key"), str) or not isinstance(info.get("expired_ts"), int):
            raise ValueError(f"{key_id}: expected {{key: BASE64, expired_ts: MS}}")
    return dict(value)


def _optional_duration(value: Any) -> int | None:
    if value in (None, "", 0):
        return None
    return parse_duration_ms(value)


_THUMBNAIL_SIZE_RE = re.compile(r"^[1-9][0-9]{0,3}x[1-9][0-9]{0,3}-(crop|scale)$")


def _thumbnail_sizes(value: Any) -> list[str]:
    sizes = _str_list(value)
    for size in sizes:
        if not _THUMBNAIL_SIZE_RE.match(size):
            raise ValueError(f"bad thumbnail size {size!r}: expected WIDTHxHEIGHT-crop or WIDTHxHEIGHT-scale")
    return sizes


def _trusted_key_servers(value: Any) -> list[dict[str, Any]]:
    """``federation.trusted_key_servers``: [{server_name, verify_keys?: {"ed25519:id": BASE64}}]."""
    if not isinstance(value, list):
        raise ValueError("expected a list of {server_name, verify_keys}")
    out = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("server_name"), str) or not item["server_name"]:
            raise ValueError("each trusted key server needs a server_name")
        keys = item.get("verify_keys") or {}
        if not isinstance(keys, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in keys.items()):
            raise ValueError("verify_keys must map key ids to base64 keys")
        out.append({"server_name": item["server_name"], "verify_keys": dict(keys)})
    return out


@dataclass(frozen=True)
class Option:
    path: str  # dotted, e.g. "database.engine"
    parse: Callable[[Any], Any]
    default: Any
    doc: str
    sample: Any = None  # value shown in the sample when it differs from the default


_DEFAULT_LISTENERS = [
    {"bind_address": "127.0.0.1", "port": 8008, "resources": ["client", "federation", "media", "keys"]},
    {"bind_address": "127.0.0.1", "port": 9008, "resources": ["metrics"]},
]


OPTIONS: list[Option] = [
    Option("server_name", _str, "localhost", "The domain part of user ids (@alice:SERVER_NAME). Cannot change once users exist."),
    Option("public_baseurl", _opt_str, None, "Public URL clients use to reach this server (default http://SERVER_NAME:8008/ style from the first client listener)."),
    Option("data_dir", _str, "./data", "Folder for the signing key, the SQLite database and local media."),
    Option("signing_key_path", _opt_str, None, "Ed25519 signing key file (default DATA_DIR/SERVER_NAME.signing.key); created on first run."),
    Option("old_signing_keys", _old_keys, {}, "Retired verify keys still published: {\"ed25519:abc\": {\"key\": BASE64, \"expired_ts\": MS}}."),
    Option("key_valid_for", parse_duration_ms, 86_400_000, "How long other servers may cache our signing keys (valid_until_ts)."),
    Option("listeners", _listeners, _DEFAULT_LISTENERS, "Where to listen. resources: client, federation, media, keys, admin, metrics. Add tls_certificate/tls_private_key to serve TLS (e.g. federation on 8448)."),
    Option("database.engine", _enum("sqlite", "postgres"), "sqlite", "sqlite (embedded, no services) or postgres (production)."),
    Option("database.path", _opt_str, None, "SQLite file (default DATA_DIR/homeserver.db)."),
    Option("database.dsn", _opt_str, None, "PostgreSQL DSN, e.g. 'dbname=sup user=sup host=127.0.0.1'."),
    Option("database.pool_min", _positive(_int), 2, "PostgreSQL: connections kept open."),
    Option("database.pool_max", _positive(_int), 10, "PostgreSQL: most connections at once."),
    Option("database.txn_retries", _non_negative(_int), 5, "Retries of a transaction that hit a serialization failure or deadlock."),
    Option("registration.enabled", _bool, False, "Allow anyone to register (User-Interactive Auth with m.login.dummy)."),
    Option("registration.require_token", _bool, False, "Require a registration token (m.login.registration_token); manage them with the admin API."),
    Option("registration.shared_secret", _opt_str, None, "Secret for the admin registration endpoint /_synapse/admin/v1/register (nonce + HMAC). Unset disables it."),
    Option("registration.bcrypt_rounds", _positive(_int), 12, "bcrypt cost factor for password hashes."),
    Option("registration.reserved_localparts", _str_list, [], "Regular expressions of localparts nobody may register (M_EXCLUSIVE)."),
    Option("auth.access_token_lifetime", _optional_duration, None, "Access token lifetime when the client asks for a refresh token (unset: 5m default for refreshable sessions only)."),
    Option("auth.refresh_token_lifetime", _optional_duration, None, "Refresh token lifetime (unset: no expiry)."),
    Option("auth.login_token_lifetime", parse_duration_ms, 120_000, "Lifetime of single-use m.login.token tokens."),
    Option("auth.max_failed_logins", _positive(_int), 10, "Failed logins per account before it is locked out for a while."),
    Option("auth.totp_issuer", _opt_str, None, "Issuer name shown in authenticator apps for TOTP two-factor (default: the server name)."),
    Option("auth.totp_attempts_per_second", _positive(_float), 0.05, "TOTP / recovery code attempts per second per account (token bucket rate; always enforced)."),
    Option("auth.totp_attempts_burst", _positive(_int), 10, "TOTP / recovery code attempts burst per account."),
    Option("rate_limits.enabled", _bool, True, "Turn every rate limit on or off."),
    Option("rate_limits.login_per_second", _positive(_float), 0.5, "Logins per second per IP (token bucket rate)."),
    Option("rate_limits.login_burst", _positive(_int), 10, "Logins burst per IP."),
    Option("rate_limits.register_per_second", _positive(_float), 0.2, "Registrations per second per IP."),
    Option("rate_limits.register_burst", _positive(_int), 5, "Registration burst per IP."),
    Option("rate_limits.message_per_second", _positive(_float), 10.0, "Events sent per second per user."),
    Option("rate_limits.message_burst", _positive(_int), 50, "Event send burst per user."),
    Option("rate_limits.join_per_second", _positive(_float), 1.0, "Joins per second per user."),
    Option("rate_limits.join_burst", _positive(_int), 10, "Join burst per user."),
    Option("rate_limits.invite_per_second", _positive(_float), 0.5, "Invites per second per user."),
    Option("rate_limits.invite_burst", _positive(_int), 10, "Invite burst per user."),
    Option("rate_limits.media_per_second", _positive(_float), 2.0, "Media uploads per second per user."),
    Option("rate_limits.media_burst", _positive(_int), 20, "Media upload burst per user."),
    # ---- security review (issue 13): limits that keep one user from harming others ----
    Option("rate_limits.to_device_per_second", _positive(_float), 20.0, "sendToDevice requests per second per user."),
    Option("rate_limits.to_device_burst", _positive(_int), 100, "sendToDevice burst per user."),
    Option("rate_limits.thumbnail_per_second", _positive(_float), 1.0, "Thumbnails generated on demand (uncached dynamic sizes) per second per user."),
    Option("rate_limits.thumbnail_burst", _positive(_int), 10, "Burst of on-demand thumbnail generations per user."),
    Option("logging.level", _enum("DEBUG", "INFO", "WARNING", "ERROR"), "INFO", "Log level."),
    Option("logging.format", _enum("text", "json"), "text", "text lines or JSON lines (one object per line)."),
    Option("http.max_request_body", _positive(parse_size), 1024 * 1024, "Largest JSON request body accepted (M_TOO_LARGE above)."),
    Option("http.cors", _bool, True, "Send CORS headers so web clients (Element) can connect."),
    Option("http.request_read_timeout", _positive(parse_duration_ms), 30_000, "A request's headers must arrive within this time of its first byte, and its body may not stall this long (a slow-trickle connection is closed)."),
    Option("http.shutdown_grace", parse_duration_ms, 10_000, "How long SIGTERM waits for in-flight requests before closing."),
    Option("user_directory.search_all_users", _bool, False, "Search every local user, instead of only users sharing a room or in public rooms."),
    Option("presence.enabled", _bool, True, "Track and share presence."),
    Option("media.enabled", _bool, True, "Serve the media repository in this process."),
    Option("media.max_upload_size", _positive(parse_size), 50 * 1024 * 1024, "Largest upload."),
    Option("media.store", _enum("local", "s3"), "local", "Where media bytes live."),
    Option("media.path", _opt_str, None, "Local media folder (default DATA_DIR/media)."),
    Option("media.s3_bucket", _opt_str, None, "S3 bucket."),
    Option("media.s3_prefix", _str, "", "Key prefix inside the bucket."),
    Option("media.s3_endpoint_url", _opt_str, None, "S3-compatible endpoint URL (MinIO, Ceph, ...)."),
    Option("media.s3_region", _opt_str, None, "S3 region."),
    Option("media.s3_access_key_id", _opt_str, None, "S3 access key (default: the environment / instance role)."),
    Option("media.s3_secret_access_key", _opt_str, None, "S3 secret key."),
    Option("media.legacy_unauthenticated", _bool, True, "Serve /_matrix/media/v3/download|thumbnail for media uploaded before the switch."),
    Option("media.user_quota", _non_negative(parse_size), 0, "Per-user media quota in bytes (0 = unlimited)."),
    Option("media.retention_days", _non_negative(_int), 0, "Delete local media not accessed for this many days (0 = keep)."),
    Option("media.thumbnail_sizes", _thumbnail_sizes, ["32x32-crop", "96x96-crop", "320x240-scale", "640x480-scale", "800x600-scale"], "Thumbnails pre-generated on upload: WIDTHxHEIGHT-crop|scale."),
    Option("media.dynamic_thumbnails", _bool, False, "Generate (and cache, at most 20 per file; rate_limits.thumbnail_* per user) thumbnails of other sizes on request; off (default): serve the closest pre-generated one."),
    Option("media.max_image_pixels", _positive(_int), 32_000_000, "Images with more pixels are not thumbnailed (decompression-bomb guard)."),
    Option("media.unused_expiry", _positive(parse_duration_ms), 86_400_000, "How long an id from POST /_matrix/media/v1/create waits for its upload before it expires."),
    Option("media.max_pending_uploads", _non_negative(_int), 10, "Unused /create ids a user may hold at once (0 = unlimited)."),
    Option("media.legacy_freeze_ts", _non_negative(_int), 0, "Media created at or before this time (ms since the epoch) stays available on the unauthenticated endpoints; 0 = the first start of the media repository."),
    Option("media.remote_retention_days", _non_negative(_int), 0, "Delete cached remote media not accessed for this many days (0 = keep)."),
    Option("media.cache_size", _non_negative(parse_size), 0, "With media.store s3: keep up to this many bytes of recently used media on local disk (0 = no cache)."),
    Option("media.cache_path", _opt_str, None, "Folder of the local media cache (default DATA_DIR/media_cache)."),
    Option("media.cleanup_interval", _positive(parse_duration_ms), 3_600_000, "How often the media cleanup job (expired ids, retention, remote cache, orphaned files) runs."),
    Option("media.io_threads", _positive(_int), 10, "Threads for media file / S3 I/O."),
    Option("media.thumbnail_threads", _positive(_int), 2, "Threads for image decoding and thumbnailing."),
    Option("redis.enabled", _bool, False, "Use Redis for worker replication."),
    Option("redis.host", _str, "127.0.0.1", "Redis host."),
    Option("redis.port", _int, 6379, "Redis port."),
    Option("retention.default_max_lifetime", parse_duration_ms, 0, "Messages in rooms without an m.room.retention policy are purged after this long; 0 keeps them forever."),
    Option("retention.allowed_lifetime_min", parse_duration_ms, 86_400_000, "Smallest max_lifetime a room's m.room.retention may set; shorter policies are raised to this."),
    Option("retention.allowed_lifetime_max", parse_duration_ms, 0, "Largest max_lifetime a room's policy may set (longer ones are lowered); 0 = no limit."),
    Option("retention.purge_interval", _positive(parse_duration_ms), 3_600_000, "How often the retention job purges expired messages (batched, one room at a time)."),
    Option("retention.redacted_content_after", parse_duration_ms, 7 * 86_400_000, "Purge the original content of redacted events after this long."),
    Option("search.postgres_language", _str, "english", "PostgreSQL text search configuration for message search (english, german, simple, ...). Changing it only affects newly indexed events."),
    Option("relations.bundle_annotations", _bool, False, "Also bundle reaction counts (unsigned.m.relations.m.annotation, deduplicated per user) — a pre-v1.7 behaviour some old clients use; off per the spec."),
    Option("reports.max_reason_length", _positive(_int), 1000, "Longest reason accepted in a content report (longer: 400 M_INVALID_PARAM)."),
    Option("e2e.to_device_max_message_size", _positive(parse_size), 64 * 1024, "Largest content of one to-device message (413 M_TOO_LARGE above)."),
    Option("e2e.to_device_inbox_max", _positive(_int), 10_000, "Most undelivered to-device messages one device may hold; beyond it sendToDevice to that device answers 429 (undelivered messages are never evicted)."),
    Option("e2e.to_device_per_sender_max", _positive(_int), 1000, "Most undelivered to-device messages one sender may queue for one device (429 beyond), so a flooder cannot fill a victim's inbox."),
    Option("e2e.to_device_expiry", parse_duration_ms, 30 * 86_400_000, "Undelivered to-device messages older than this are deleted by the cleanup job."),
    Option("e2e.to_device_txn_retention", parse_duration_ms, 86_400_000, "How long sendToDevice transaction ids are remembered for idempotency."),
    Option("e2e.device_list_retention", parse_duration_ms, 30 * 86_400_000, "Device-list change rows older than this are compacted away (clients with an older since resync)."),
    Option("e2e.claimed_key_ids_retention", parse_duration_ms, 7 * 86_400_000, "How long ids of claimed one-time keys are remembered to refuse conflicting re-uploads."),
    Option("e2e.cleanup_interval", _positive(parse_duration_ms), 3_600_000, "How often the end-to-end cleanup job (to-device inbox, device-list compaction) runs."),
    Option("voip.turn_uris", _str_list, [], "TURN server URIs handed to clients by GET /voip/turnServer (e.g. turn:turn.example.org:3478?transport=udp); empty: no TURN server."),
    Option("voip.turn_shared_secret", _opt_str, None, "Shared secret with the TURN server (coturn use-auth-secret): credentials are the time-limited HMAC-SHA1 username/password scheme."),
    Option("voip.turn_username", _opt_str, None, "Static TURN username (used only without voip.turn_shared_secret)."),
    Option("voip.turn_password", _opt_str, None, "Static TURN password (used only without voip.turn_shared_secret)."),
    Option("voip.turn_user_lifetime", _positive(parse_duration_ms), 3_600_000, "How long TURN credentials from the shared secret stay valid (ttl in the answer)."),
    Option("voip.turn_allow_guests", _bool, True, "Give TURN credentials to guest users too."),
    Option("support.contacts", _support_contacts, [], "Contacts in /.well-known/matrix/support: a list of {role, matrix_id and/or email_address}."),
    Option("support.page", _opt_str, None, "Support page URL in /.well-known/matrix/support (with no contacts and no page the endpoint answers 404)."),
    Option("rtc.livekit_url", _opt_str, None, "Group calls (Element Call / MatrixRTC): the wss:// address of your LiveKit server. Unset: no call focus is advertised and the token service is off."),
    Option("rtc.livekit_api_key", _opt_str, None, "LiveKit API key the token service signs with (required with rtc.livekit_url)."),
    Option("rtc.livekit_api_secret", _opt_str, None, "LiveKit API secret the token service signs with (required with rtc.livekit_url)."),
    Option("rtc.livekit_service_url", _opt_str, None, "Public URL of SUP's LiveKit token service advertised in /.well-known/matrix/client (default: base_url + /_sup/livekit)."),
    Option("rtc.token_lifetime", _positive(parse_duration_ms), 3_600_000, "Lifetime of the LiveKit access tokens the token service issues."),
    Option("stories.lifetime", _positive(parse_duration_ms), 86_400_000, "How long a story stays visible unless its author picks a shorter lifetime (docs/stories.md)."),
    Option("stories.max_lifetime", _positive(parse_duration_ms), 86_400_000, "The longest lifetime an author may ask for a story."),
    Option("stories.purge_interval", _positive(parse_duration_ms), 300_000, "How often expired stories and their media are purged (batched)."),
    Option("url_preview.enabled", _bool, False, "URL previews (GET /_matrix/client/v1/media/preview_url). Off by default: when on, this server fetches any URL a user asks for (through the IP blocklist below), which reveals its address to those sites and costs bandwidth. Turn on for a server whose users want link previews."),
    Option("url_preview.ip_range_blocklist", _str_list, list(DEFAULT_BLOCKLIST), "CIDR ranges URL previews may never connect to (checked on the resolved address of the page, every redirect and the preview image)."),
    Option("url_preview.ip_range_allowlist", _str_list, [], "CIDR ranges allowed even if in url_preview.ip_range_blocklist."),
    Option("url_preview.max_size", _positive(parse_size), 10 * 1024 * 1024, "Largest page or preview image fetched for a preview."),
    Option("url_preview.timeout", _positive(parse_duration_ms), 10_000, "Timeout of one preview fetch."),
    Option("url_preview.cache_ttl", _positive(parse_duration_ms), 3_600_000, "How long a URL's preview is cached."),
    Option("url_preview.oembed_providers", _oembed_providers, [], "oEmbed providers: a list of {url_pattern: glob over page URLs, endpoint: the provider's oEmbed URL}."),
    Option("openid.token_lifetime", _positive(parse_duration_ms), 3_600_000, "Lifetime of OpenID tokens from POST /user/{userId}/openid/request_token."),
    Option("push.enabled", _bool, True, "Send push notifications to http pushers (POST /_matrix/push/v1/notify)."),
    Option("push.max_unread_scan", _positive(_int), 500, "Most events after a user's read receipt evaluated per room for unread counts (more: the count is a lower bound)."),
    Option("push.count_cache_size", _positive(_int), 100_000, "Cached (user, room) unread counts kept in memory (least recently used dropped)."),
    Option("push.ip_range_blocklist", _str_list, list(DEFAULT_BLOCKLIST), "CIDR ranges push gateways may not resolve to (private, reserved and documentation networks by default: homeserver/types/ip_ranges.py)."),
    Option("push.ip_range_allowlist", _str_list, [], "CIDR ranges allowed even if in push.ip_range_blocklist (e.g. 127.0.0.1/32 for a local gateway)."),
    Option("push.gateway_timeout", _positive(parse_duration_ms), 10_000, "Timeout of one push gateway request."),
    Option("push.gateway_max_response_size", _positive(parse_size), 64 * 1024, "Largest push gateway response read."),
    Option("push.max_pushers_per_user", _positive(_int), 20, "Most pushers one user may register (400 M_RESOURCE_LIMIT_EXCEEDED beyond)."),
    Option("push.max_in_flight_per_user", _positive(_int), 5, "Most gateway requests in flight for one user's pushers (the rest wait; 100 in flight server-wide)."),
    Option("push.max_attempts", _positive(_int), 5, "Failed attempts in a row after which a pusher is marked failing (it keeps retrying with backoff until push.max_age)."),
    Option("push.retry_delay", _positive(parse_duration_ms), 1_000, "First retry delay of a failed push (doubles per attempt, capped at push.max_retry_delay)."),
    Option("push.max_retry_delay", _positive(parse_duration_ms), 300_000, "Longest delay between two attempts of a failing push."),
    Option("push.queue_size", _positive(_int), 1_000, "Notifications held in memory per pusher; beyond, the pusher reads its events back from the database (nothing is dropped)."),
    Option("push.max_age", _positive(parse_duration_ms), 86_400_000, "Events older than this are not pushed (after an outage or a restart, pushers catch up on newer events only)."),
    Option("push.poll_interval", _positive(parse_duration_ms), 2_000, "How often the pusher service checks the events stream and persists pusher positions (commits in the same process wake it at once)."),
    # ---- ops (issue 19): server notices, admin API ----
    Option("server_notices.enabled", _bool, True, "Let admins send server notices (POST /_synapse/admin/v1/send_server_notice) from a system user into one room per user."),
    Option("server_notices.system_mxid_localpart", _str, "notices", "Localpart of the system user that sends server notices (created on the first notice)."),
    Option("server_notices.system_mxid_display_name", _str, "Server Notices", "Display name of the server-notices system user."),
    Option("server_notices.room_name", _str, "Server Notices", "Name of each user's server-notices room."),
    # ---- email (SMTP sending, email notifications, email 3PIDs; docs/push.md "Email") ----
    Option("email.smtp_host", _opt_str, None, "SMTP server that sends SUP's mail (notifications, address validation, password resets). Unset: no email at all."),
    Option("email.smtp_port", _opt_port, None, "SMTP port (default 465 with email.tls: implicit, else 587 with starttls, 25 without TLS)."),
    Option("email.tls", _enum("starttls", "implicit", "none"), "starttls", "starttls: upgrade the connection and refuse servers that cannot; implicit: TLS from the first byte (SMTPS); none: plain text (local relays only)."),
    Option("email.tls_verify", _bool, True, "Verify the SMTP server's certificate against the system trust store (and its host name)."),
    Option("email.tls_ca_file", _opt_str, None, "PEM file of the CA(s) to trust for the SMTP server instead of the system trust store (a private relay)."),
    Option("email.smtp_user", _opt_str, None, "SMTP AUTH user name (unset: no authentication)."),
    Option("email.smtp_password", _opt_str, None, "SMTP AUTH password."),
    Option("email.from", _opt_str, None, "Sender address of SUP's mail, e.g. 'Example Chat <noreply@example.org>' (required with email.smtp_host)."),
    Option("email.app_name", _str, "Matrix", "Name of the service shown in subjects and texts."),
    Option("email.public_base_url", _opt_str, None, "Public URL of this server for links in mail (validation, unsubscribe); default: public_baseurl."),
    Option("email.template_dir", _opt_str, None, "Directory of templates overriding the built-in ones by file name (notif_mail.html, password_reset.txt, ...; Jinja2, sandboxed, HTML autoescaped)."),
    Option("email.timeout", _positive(parse_duration_ms), 30_000, "Timeout of one SMTP delivery attempt (connect + send)."),
    Option("email.max_attempts", _positive(_int), 3, "Attempts per mail for temporary failures before it waits for the next retry round (notifications are never dropped while still unread)."),
    Option("email.retry_delay", _positive(parse_duration_ms), 5_000, "First delay between SMTP attempts (doubles per attempt)."),
    Option("email.notif_delay", _non_negative(parse_duration_ms), 600_000, "An email notification goes out this long after an unread message, if it is still unread."),
    Option("email.notif_throttle", _non_negative(parse_duration_ms), 3_600_000, "At most one notification mail per room and email pusher in this period."),
    Option("email.enable_notifs", _bool, True, "Send email notifications to email pushers (email.smtp_host must be set)."),
    Option("email.validation_token_lifetime", _positive(parse_duration_ms), 3_600_000, "How long an address-validation link or token is valid."),
    Option("email.max_validation_attempts", _positive(_int), 10, "Wrong tokens accepted per validation session before it is refused."),
    Option("email.require_at_registration", _bool, False, "Registration needs a validated email address (m.login.email.identity)."),
    Option("process.gc_thresholds", _gc_thresholds, [20_000, 50, 100], "Python garbage-collector thresholds [gen0, gen1, gen2]; the startup heap is frozen out of collections. Fewer, cheaper collections keep latency tails short."),
    # ---- federation transport (fednet): outbound client, discovery, keyring, queues ----
    Option("federation.enabled", _bool, True, "Talk to other Matrix servers (outbound requests and queues). Inbound routes are served on listeners with the federation resource."),
    Option("federation.extra_ca_files", _str_list, [], "PEM CA files trusted for federation TLS in addition to the system CAs (private or test CAs). Verification is always on."),
    Option("federation.ip_range_blacklist", _str_list, ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "0.0.0.0/8", "192.0.0.0/24", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4", "::1/128", "::/128", "fe80::/10", "fc00::/7", "ff00::/8", "::ffff:0:0/96", "64:ff9b::/96"], "CIDR ranges other servers may not resolve to (private networks by default): outbound federation, well-known lookups."),
    Option("federation.ip_range_whitelist", _str_list, [], "CIDR ranges allowed even if in federation.ip_range_blacklist (e.g. 127.0.0.0/8 for test servers on loopback)."),
    Option("federation.domain_whitelist", _str_list, [], "If non-empty, the only server names federated with (inbound and outbound)."),
    Option("federation.trusted_key_servers", _trusted_key_servers, [], "Notaries asked for keys a server cannot serve itself: [{server_name, verify_keys: {KEY_ID: BASE64}}]. None by default."),
    Option("federation.request_timeout", _positive(parse_duration_ms), 60_000, "Overall timeout of one outbound federation request."),
    Option("federation.max_response_size", _positive(parse_size), 100 * 1024 * 1024, "Largest outbound federation response read (send_join of big rooms needs tens of MB)."),
    Option("federation.verify_threads", _positive(_int), 2, "Threads verifying event signatures."),
    Option("federation.max_backoff", _positive(parse_duration_ms), 3_600_000, "Longest wait between retries to an unreachable server (exponential from 5s; reset when it contacts us)."),
    Option("federation.edu_outbox_retention", _positive(parse_duration_ms), 7 * 86_400_000, "Durable EDUs (to-device, device lists) for a server that stays unreachable are dropped after this long."),
    Option("federation.send_presence", _bool, True, "Exchange presence (m.presence EDUs) with other servers."),
]

OPTIONS_BY_PATH: dict[str, Option] = {o.path: o for o in OPTIONS}
