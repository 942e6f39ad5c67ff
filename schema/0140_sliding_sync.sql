-- Simplified sliding sync (MSC4186): per-connection state, so a connection survives a restart and only
-- what changed since its `pos` is sent. See docs/sliding-sync.md.

-- One row per (user, device, conn_id). `generation` changes whenever the client starts the connection
-- again (a request without `pos`): a pos of an older generation is unknown (M_UNKNOWN_POS).
CREATE TABLE sliding_sync_connections (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    conn_id TEXT NOT NULL,
    generation TEXT NOT NULL,
    last_used_ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, conn_id)
);
CREATE INDEX sliding_sync_connections_used ON sliding_sync_connections (last_used_ts);

-- What the connection had received after each response it was handed (only the latest one or two are
-- kept: a request with pos N confirms N, older positions are deleted).
-- `rooms`: JSON {room_id: [sent_upto, timeline_limit, required_state_signature, membership]}.
CREATE TABLE sliding_sync_positions (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    conn_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    stream_token TEXT NOT NULL,
    rooms TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, conn_id, seq)
);
