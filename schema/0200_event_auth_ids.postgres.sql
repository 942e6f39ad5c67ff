-- The auth-chain index as one row per event (its auth_events as a JSON array) instead of one row per
-- (event, auth event): every persisted event wrote three or four rows; now one.
CREATE TABLE event_auth_ids (
    event_id TEXT PRIMARY KEY,
    auth_ids TEXT NOT NULL
);
INSERT INTO event_auth_ids (event_id, auth_ids)
    SELECT event_id, json_agg(auth_id)::text FROM event_auth GROUP BY event_id;
DROP TABLE event_auth;
