-- Federation, event side (issue 16): events kept apart from the timeline, auth edges, backward extremities,
-- the resolved current state per stream position, inbound transaction dedupe. See docs/state-storage.md.

-- Outliers (state/auth events fetched over federation), rejected and soft-failed events. Never in the
-- timeline: every reader of `events` stays untouched. An outlier that later arrives in the timeline is moved
-- to `events` (de-outliered) in the persist transaction.
CREATE TABLE event_outliers (
    event_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    status TEXT NOT NULL,                           -- outlier | rejected | soft_failed
    reason TEXT,                                    -- why it was rejected / soft-failed
    type TEXT NOT NULL,
    state_key TEXT,
    sender TEXT NOT NULL,
    depth BIGINT NOT NULL,
    origin_server_ts BIGINT NOT NULL,
    origin TEXT,                                    -- the server that sent it to us
    received_ts BIGINT NOT NULL,
    json TEXT NOT NULL,                             -- the PDU as received (redacted if its hash did not match)
    state_before TEXT                               -- state set id before it, when known
);
CREATE INDEX event_outliers_room ON event_outliers (room_id, status);

-- Auth DAG edges of every stored event (timeline or not): the auth-chain index.
CREATE TABLE event_auth (
    event_id TEXT NOT NULL,
    auth_id TEXT NOT NULL,
    PRIMARY KEY (event_id, auth_id)
);

-- prev_events we do not have (the gaps backfill and get_missing_events fill).
CREATE TABLE room_backward_extremities (
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (room_id, event_id)
);

-- The room's resolved current state set after the event at this stream position, written only where it
-- differs from that event's own state_after (forks): "state at a position" reads it first.
CREATE TABLE room_state_positions (
    room_id TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL,
    state_set TEXT NOT NULL,
    PRIMARY KEY (room_id, stream_ordering)
);

-- Inbound /send transactions already processed: (origin, txn_id) -> the response we gave.
CREATE TABLE federation_inbound_txns (
    origin TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    response TEXT NOT NULL,
    received_ts BIGINT NOT NULL,
    PRIMARY KEY (origin, txn_id)
);
CREATE INDEX federation_inbound_txns_ts ON federation_inbound_txns (received_ts);
