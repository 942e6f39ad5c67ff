-- Full-text search over room events (SQLite: FTS5). One row per indexed event; the FTS row shares its rowid.
-- Indexed: m.room.message content.body, m.room.name content.name, m.room.topic content.topic.
-- Never indexed: encrypted events. Rows are deleted when the event is redacted. See docs/search.md.
CREATE TABLE event_search (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    room_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    type TEXT NOT NULL,
    key TEXT NOT NULL,                      -- content.body | content.name | content.topic
    origin_server_ts BIGINT NOT NULL,
    topological_ordering BIGINT NOT NULL,
    stream_ordering BIGINT NOT NULL
);
CREATE INDEX event_search_room ON event_search (room_id, stream_ordering);
CREATE VIRTUAL TABLE event_search_fts USING fts5(value, tokenize = 'porter unicode61 remove_diacritics 2');
