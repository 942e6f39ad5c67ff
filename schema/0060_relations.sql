-- Messaging: the relations index (edits, reactions, references, threads, replies) and thread list.
-- Rows are written in the same transaction as the event (the persister's in-transaction hook) and
-- deleted when the child event is redacted (its m.relates_to is gone). See docs/messaging.md.

CREATE TABLE event_relations (
    event_id TEXT NOT NULL,                 -- the child (edit, reaction, reply, thread message...)
    rel_type TEXT NOT NULL,                 -- m.replace | m.annotation | m.reference | m.thread | m.in_reply_to | other
    parent_id TEXT NOT NULL,                -- the event it relates to (may be unknown: stored, not aggregated)
    room_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    type TEXT NOT NULL,                     -- the child's event type
    aggregation_key TEXT,                   -- m.annotation key
    origin_server_ts BIGINT NOT NULL,
    topological_ordering BIGINT NOT NULL,
    stream_ordering BIGINT NOT NULL,
    PRIMARY KEY (event_id, rel_type)
);
CREATE INDEX event_relations_parent ON event_relations (parent_id, rel_type, topological_ordering, stream_ordering);
CREATE INDEX event_relations_annotation ON event_relations (parent_id, sender, type, aggregation_key);

-- One row per thread root: its latest thread event (ordering for GET /threads).
CREATE TABLE threads (
    room_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,                -- the root event id
    latest_event_id TEXT NOT NULL,
    topological_ordering BIGINT NOT NULL,
    stream_ordering BIGINT NOT NULL,
    PRIMARY KEY (room_id, thread_id)
);
CREATE INDEX threads_order ON threads (room_id, topological_ordering, stream_ordering);
