-- Rooms and events: the single write path's tables (see docs/state-storage.md, docs/rooms-storage-api.md).

CREATE TABLE rooms (
    room_id TEXT PRIMARY KEY,
    room_version TEXT NOT NULL,
    creator TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    is_public BOOLEAN NOT NULL DEFAULT FALSE,      -- published in the public room directory
    room_type TEXT,                                 -- creation_content.type (m.space ...)
    blocked_by TEXT,                                -- admin block: nobody may join
    deleted BOOLEAN NOT NULL DEFAULT FALSE          -- purged by an admin
);

-- Every event, once. stream_ordering is the "events" stream position.
CREATE TABLE events (
    stream_ordering BIGINT PRIMARY KEY,
    topological_ordering BIGINT NOT NULL,           -- depth
    event_id TEXT NOT NULL UNIQUE,
    room_id TEXT NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT,
    sender TEXT NOT NULL,
    origin_server_ts BIGINT NOT NULL,
    membership TEXT,                                -- content.membership of m.room.member
    json TEXT NOT NULL,                             -- the full signed PDU (without unsigned.*)
    state_before TEXT,                              -- state set id before this event
    state_after TEXT,                               -- state set id after it (== before for non-state)
    replaces_state TEXT,                            -- previous event of the same (type, state_key)
    redacted_by TEXT,                               -- id of the redaction that applies
    device_id TEXT,                                 -- sending device (for unsigned.transaction_id)
    txn_id TEXT
);
CREATE INDEX events_room_stream ON events (room_id, stream_ordering);
CREATE INDEX events_room_topo ON events (room_id, topological_ordering, stream_ordering);
CREATE INDEX events_room_ts ON events (room_id, origin_server_ts);

-- DAG edges.
CREATE TABLE event_edges (
    event_id TEXT NOT NULL,
    prev_event_id TEXT NOT NULL,
    PRIMARY KEY (event_id, prev_event_id)
);
CREATE INDEX event_edges_prev ON event_edges (prev_event_id);

CREATE TABLE room_forward_extremities (
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (room_id, event_id)
);

-- State storage: content-addressed chunks (buckets of a state map) and state sets (bucket -> chunk).
CREATE TABLE state_chunks (
    chunk_id TEXT PRIMARY KEY,                      -- hash of the entries
    entries TEXT NOT NULL                           -- JSON [[type, state_key, event_id], ...] sorted
);
CREATE TABLE state_sets (
    set_id TEXT PRIMARY KEY,                        -- hash of the bucket map
    room_id TEXT NOT NULL,
    buckets TEXT NOT NULL,                          -- JSON {bucket: chunk_id}
    size INTEGER NOT NULL
);
CREATE INDEX state_sets_room ON state_sets (room_id);

CREATE TABLE current_state (
    room_id TEXT NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    membership TEXT,
    PRIMARY KEY (room_id, type, state_key)
);
CREATE INDEX current_state_member ON current_state (state_key, type);

CREATE TABLE room_state_meta (
    room_id TEXT PRIMARY KEY,
    state_set TEXT NOT NULL,                        -- current state set id
    max_depth BIGINT NOT NULL,
    last_stream BIGINT NOT NULL
);

-- One row per membership event (not per recipient): membership history per user.
CREATE TABLE membership_events (
    stream_ordering BIGINT PRIMARY KEY,
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    membership TEXT NOT NULL
);
CREATE INDEX membership_events_user ON membership_events (user_id, stream_ordering);

-- Client transaction ids: idempotent /send, written in the event's transaction; pruned after 24h+.
CREATE TABLE event_txn_ids (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    inserted_ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, txn_id)
);
CREATE INDEX event_txn_ids_ts ON event_txn_ids (inserted_ts);

CREATE TABLE room_aliases (
    room_alias TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    creator TEXT NOT NULL,
    created_ts BIGINT NOT NULL
);
CREATE INDEX room_aliases_room ON room_aliases (room_id);

CREATE TABLE room_forgotten (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    PRIMARY KEY (user_id, room_id)
);

CREATE TABLE room_purges (
    purge_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    status TEXT NOT NULL,                           -- scheduled | active | complete | failed
    started_ts BIGINT NOT NULL,
    error TEXT
);
