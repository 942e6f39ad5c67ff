-- The room version of an event kept out of band (an invite to a room this server is not in has no `rooms` row).
ALTER TABLE event_outliers ADD COLUMN room_version TEXT;
