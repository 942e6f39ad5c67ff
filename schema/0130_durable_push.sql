-- Durable pushers (docs/push.md): each pusher remembers the events stream position it has handled up to, so
-- after a restart or a crash it resumes from there (bounded by push.max_age) instead of losing what it missed.
-- NULL: not known yet (a pusher from before this migration starts at the stream's current position).
ALTER TABLE pushers ADD COLUMN stream_pos BIGINT;

-- Email pushers: when each pusher last mailed about each room (throttling survives restarts).
-- Bounded by email pushers x rooms they were mailed about; rows go with the pusher.
CREATE TABLE email_push_throttle (
    user_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    pushkey TEXT NOT NULL,
    room_id TEXT NOT NULL,
    last_sent_ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, app_id, pushkey, room_id)
);
