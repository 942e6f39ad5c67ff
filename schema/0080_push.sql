-- Push: per-user push rules, pushers and the pusher job's position.
-- No per-recipient-per-event rows: unread counts are computed from receipts and the events stream (docs/push.md).

-- What a user changed relative to the server-default rules, as one JSON document per user
-- ({"user": {kind: [rules]}, "defaults": {rule_id: {"enabled", "actions"}}}). Bounded by users.
CREATE TABLE push_rules (
    user_id TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    version BIGINT NOT NULL
);

-- One row per (user, app_id, pushkey): bounded by what users configure (deleted with kind=null or when the
-- gateway rejects the pushkey).
CREATE TABLE pushers (
    user_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    pushkey TEXT NOT NULL,
    kind TEXT NOT NULL,
    app_display_name TEXT NOT NULL,
    device_display_name TEXT NOT NULL,
    profile_tag TEXT,
    lang TEXT NOT NULL,
    data TEXT NOT NULL,                      -- JSON object (data.url for http pushers)
    device_id TEXT,                          -- the device that created it
    created_ts BIGINT NOT NULL,
    last_success_ts BIGINT,
    failing_since BIGINT,
    PRIMARY KEY (user_id, app_id, pushkey)
);
CREATE INDEX pushers_app_pushkey_idx ON pushers (app_id, pushkey);


-- "Which of my receipts moved in (since, now]?" for resetting unread counts in /sync.
CREATE INDEX push_receipts_user_stream_idx ON receipts (user_id, stream_id);
