-- Sync and real time: uploaded filters, read receipts, presence.
-- Typing notifications are in memory only (they expire within seconds).

-- Filters uploaded with POST /user/{userId}/filter; ids are per user, counting from 0.
CREATE TABLE user_filters (
    user_id TEXT NOT NULL,
    filter_id BIGINT NOT NULL,
    filter_json TEXT NOT NULL,               -- canonical JSON of the validated filter as uploaded
    PRIMARY KEY (user_id, filter_id)
);
CREATE INDEX user_filters_json_idx ON user_filters (user_id, filter_json);

-- The latest receipt per (room, type, user, thread); '' = an unthreaded receipt.
-- One row per user and room at most per type/thread: the table is bounded by membership.
CREATE TABLE receipts (
    room_id TEXT NOT NULL,
    receipt_type TEXT NOT NULL,              -- m.read, m.read.private
    user_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    data TEXT NOT NULL,                      -- JSON: {"ts": ..., "thread_id": ...}
    stream_id BIGINT NOT NULL,
    PRIMARY KEY (room_id, receipt_type, user_id, thread_id)
);
CREATE INDEX receipts_stream_idx ON receipts (stream_id);
CREATE INDEX receipts_room_stream_idx ON receipts (room_id, stream_id);

-- The latest presence of each local user (one row per user: bounded).
CREATE TABLE presence (
    user_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,                     -- online, unavailable, offline
    status_msg TEXT,
    last_active_ts BIGINT NOT NULL,
    currently_active SMALLINT NOT NULL,
    stream_id BIGINT NOT NULL
);
CREATE INDEX presence_stream_idx ON presence (stream_id);
