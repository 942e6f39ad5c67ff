-- Remote users' device lists, cached while a local user shares a room with them (docs/federation.md,
-- "Remote device lists"). A row in remote_device_lists means "tracked": m.device_list_update EDUs whose prev_id
-- chain continues from stream_id are applied; a gap sets resync_needed and /user/devices/{userId} replaces the
-- list. Local /keys/query answers tracked users with resync_needed = 0 from here.
-- Bounded: rows are deleted when no local user shares a room with the user any more.
CREATE TABLE remote_device_lists (
    user_id TEXT PRIMARY KEY,
    stream_id BIGINT NOT NULL DEFAULT 0,     -- the list is complete up to this stream_id of the user's server
    master_key TEXT,                         -- JSON, cross-signing master key (NULL: none)
    self_signing_key TEXT,                   -- JSON, cross-signing self-signing key (NULL: none)
    resync_needed INTEGER NOT NULL DEFAULT 1,
    resync_attempts INTEGER NOT NULL DEFAULT 0,
    retry_at_ts BIGINT NOT NULL DEFAULT 0,   -- no resync attempt before this time (backoff)
    updated_ts BIGINT NOT NULL
);
CREATE INDEX remote_device_lists_resync ON remote_device_lists (resync_needed, retry_at_ts);

CREATE TABLE remote_devices (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    keys TEXT,                               -- JSON device keys as the user's server signed them (NULL: none)
    display_name TEXT,
    PRIMARY KEY (user_id, device_id)
);
