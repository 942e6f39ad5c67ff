-- Content reports (rooms, events, users) for server admins; Synapse-compatible admin API shapes.
CREATE TABLE content_reports (
    id INTEGER PRIMARY KEY,                 -- rowid: allocated by the insert
    kind TEXT NOT NULL,                     -- event | room | user
    received_ts BIGINT NOT NULL,
    reporter TEXT NOT NULL,                 -- user_id of the reporter
    room_id TEXT,
    event_id TEXT,
    target_user_id TEXT,
    reason TEXT,
    score INTEGER                           -- legacy (removed from the spec in v1.18), validated when sent
);
CREATE INDEX content_reports_ts ON content_reports (kind, received_ts);
CREATE INDEX content_reports_room ON content_reports (room_id);
CREATE INDEX content_reports_reporter ON content_reports (reporter);

-- Redacted events whose original content is still stored; the retention job purges it after
-- retention.redacted_content_after and deletes the row.
CREATE TABLE redacted_content_pending (
    event_id TEXT PRIMARY KEY,
    redacted_ts BIGINT NOT NULL
);
CREATE INDEX redacted_content_pending_ts ON redacted_content_pending (redacted_ts);
