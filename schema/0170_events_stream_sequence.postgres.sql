-- Multi-writer events stream (docs/workers.md, "Streams and their writers"): with event persister
-- instances, every writer takes its positions from this sequence. A single process keeps allocating in
-- memory and never touches it; a writer brings it up to MAX(events.stream_ordering) at start (under an
-- advisory lock) before allocating, so a deployment can move from one process to several at any time.
CREATE SEQUENCE events_stream_seq;
SELECT setval('events_stream_seq', GREATEST(COALESCE((SELECT MAX(stream_ordering) FROM events), 0), 1));
