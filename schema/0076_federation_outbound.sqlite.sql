-- Outbound federation: per-destination delivery state, the sender's fan-out position, the durable EDU outbox.
-- See docs/federation.md ("Outbound queues").

-- One row per server we have sent (or must send) something to. Bounded by the servers we share rooms with.
-- acked_stream: local events up to this events-stream position are delivered to it (or superseded by a catch-up).
-- pending_from: the lowest position of an undelivered event for it (NULL: nothing pending) — after a restart the
-- queue catches up from here by sending each shared room's latest events.
CREATE TABLE federation_destinations (
    destination TEXT PRIMARY KEY,
    acked_stream BIGINT NOT NULL DEFAULT 0,
    pending_from BIGINT,
    retry_at_ts BIGINT NOT NULL DEFAULT 0,
    retry_interval_ms BIGINT NOT NULL DEFAULT 0,
    failing_since_ts BIGINT,
    last_success_ts BIGINT
);

-- How far the sender has fanned local events out into federation_destinations (replayed after a crash).
CREATE TABLE federation_sender_position (
    name TEXT PRIMARY KEY,
    stream BIGINT NOT NULL
);

-- EDUs that must not be lost (to-device, device-list and signing-key updates), written in the same transaction
-- as the local change and deleted once the destination acknowledged the transaction that carried them.
-- Bounded: rows older than federation.edu_outbox_retention are pruned by the sender's cleanup.
CREATE TABLE federation_edu_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    destination TEXT NOT NULL,
    edu_type TEXT NOT NULL,
    content TEXT NOT NULL,
    created_ts BIGINT NOT NULL
);
CREATE INDEX federation_edu_outbox_dest ON federation_edu_outbox (destination, id);
