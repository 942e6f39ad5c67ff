-- Operations / admin API (issue 19, docs/admin-api.md).

-- Per-user moderation settings that the Synapse-compatible admin API manages.
-- shadow_banned: the user's room events are answered with a plausible id but never sent.
-- ratelimit_override: 1 when messages_per_second/burst_count replace the configured message limit
-- (0/0 means "not limited at all").
CREATE TABLE user_admin_settings (
    user_id TEXT PRIMARY KEY,
    shadow_banned SMALLINT NOT NULL DEFAULT 0,
    ratelimit_override SMALLINT NOT NULL DEFAULT 0,
    messages_per_second BIGINT NOT NULL DEFAULT 0,
    burst_count BIGINT NOT NULL DEFAULT 0,
    experimental_features TEXT NOT NULL DEFAULT '{}',   -- JSON object feature -> bool
    updated_ts BIGINT NOT NULL
);

-- Long-running admin jobs (purge history, redact a user's events, background jobs), polled by id.
CREATE TABLE admin_tasks (
    task_id TEXT PRIMARY KEY,
    action TEXT NOT NULL,                 -- purge_history | redact_user | <background job name>
    resource_id TEXT NOT NULL,            -- room id or user id the job works on
    status TEXT NOT NULL,                 -- scheduled | active | complete | failed
    started_ts BIGINT NOT NULL,
    updated_ts BIGINT NOT NULL,
    result TEXT,                          -- JSON, action-specific
    error TEXT
);
CREATE INDEX admin_tasks_resource ON admin_tasks (resource_id, started_ts);

-- The server-notices room of each local user (one per user, created on the first notice).
CREATE TABLE server_notice_rooms (
    user_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    created_ts BIGINT NOT NULL
);

-- What a room shutdown did (kicked users, new room), reported by the delete-status routes.
ALTER TABLE room_purges ADD COLUMN shutdown_result TEXT;
