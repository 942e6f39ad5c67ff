-- Full-text search over room events (PostgreSQL: tsvector + GIN). The text search configuration
-- (language) is the search.postgres_language option, applied when rows are written and queried.
-- Indexed: m.room.message content.body, m.room.name content.name, m.room.topic content.topic.
-- Never indexed: encrypted events. Rows are deleted when the event is redacted. See docs/search.md.
CREATE TABLE event_search (
    id BIGSERIAL PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    room_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    type TEXT NOT NULL,
    key TEXT NOT NULL,
    origin_server_ts BIGINT NOT NULL,
    topological_ordering BIGINT NOT NULL,
    stream_ordering BIGINT NOT NULL,
    vector TSVECTOR NOT NULL
);
CREATE INDEX event_search_room ON event_search (room_id, stream_ordering);
CREATE INDEX event_search_vector ON event_search USING GIN (vector);
