-- End-to-end encryption: device keys, one-time and fallback keys, cross-signing,
-- device-list change stream, to-device inbox, key backup, dehydrated devices.
-- Retention of the growing tables is described in docs/e2e.md.

-- One row per device: the signed device_keys object, stored as canonical JSON.
CREATE TABLE e2e_device_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

-- Unclaimed one-time keys. upload_seq orders claims (oldest upload first, v1.13).
CREATE TABLE e2e_one_time_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    upload_seq BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, algorithm, key_id)
);
CREATE INDEX e2e_one_time_keys_claim_idx ON e2e_one_time_keys (user_id, device_id, algorithm, upload_seq);

-- Ids of one-time keys already handed out (so a re-upload of a claimed id with other content is refused).
-- Bounded: pruned by the cleanup job after e2e.claimed_key_ids_retention.
CREATE TABLE e2e_claimed_key_ids (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, algorithm, key_id)
);
CREATE INDEX e2e_claimed_key_ids_ts_idx ON e2e_claimed_key_ids (ts);

-- One fallback key per device and algorithm; used = handed out at least once.
CREATE TABLE e2e_fallback_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    used SMALLINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, device_id, algorithm)
);

-- Current cross-signing keys: key_type is master, self_signing or user_signing.
CREATE TABLE e2e_cross_signing_keys (
    user_id TEXT NOT NULL,
    key_type TEXT NOT NULL,
    public_key TEXT NOT NULL,
    key_json TEXT NOT NULL,
    ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, key_type)
);

-- Signatures uploaded with /keys/signatures/upload, merged into /keys/query answers.
-- target_key_id is a device id or a cross-signing public key.
CREATE TABLE e2e_signatures (
    target_user_id TEXT NOT NULL,
    target_key_id TEXT NOT NULL,
    signer_user_id TEXT NOT NULL,
    signer_key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (target_user_id, target_key_id, signer_user_id, signer_key_id)
);

-- Device-list stream: "user_id's device list changed at stream_id".
-- Compacted: only the newest row per user survives, and rows older than the horizon are dropped.
CREATE TABLE device_list_changes (
    stream_id BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    ts BIGINT NOT NULL,
    PRIMARY KEY (stream_id, user_id)
);
CREATE INDEX device_list_changes_user_idx ON device_list_changes (user_id, stream_id);

-- Device-list stream, membership part: observer must (re)start (kind='changed') or stop
-- (kind='left') tracking target's devices, because they started/stopped sharing a room.
CREATE TABLE device_list_membership_changes (
    stream_id BIGINT NOT NULL,
    observer_user_id TEXT NOT NULL,
    target_user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    ts BIGINT NOT NULL,
    PRIMARY KEY (observer_user_id, stream_id, target_user_id)
);
CREATE INDEX device_list_membership_stream_idx ON device_list_membership_changes (stream_id);

-- Oldest position still answerable exactly; older "since" means a full resync.
CREATE TABLE device_list_horizon (
    id SMALLINT PRIMARY KEY,
    stream_id BIGINT NOT NULL
);
INSERT INTO device_list_horizon (id, stream_id) VALUES (1, 0);

-- To-device inbox: one row per recipient device per send; deleted once acknowledged.
CREATE TABLE device_inbox (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    sender TEXT NOT NULL,
    event_type TEXT NOT NULL,
    content_json TEXT NOT NULL,
    ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, stream_id)
);
CREATE INDEX device_inbox_stream_idx ON device_inbox (stream_id);
CREATE INDEX device_inbox_ts_idx ON device_inbox (ts);

-- sendToDevice transaction ids (idempotency), pruned after e2e.to_device_txn_retention.
CREATE TABLE to_device_txns (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, txn_id)
);
CREATE INDEX to_device_txns_ts_idx ON to_device_txns (ts);

-- Server-side key backup.
CREATE TABLE room_key_backup_versions (
    user_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    algorithm TEXT NOT NULL,
    auth_data TEXT NOT NULL,
    etag BIGINT NOT NULL DEFAULT 0,
    deleted SMALLINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, version)
);

CREATE TABLE room_key_backup_keys (
    user_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    room_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    first_message_index BIGINT NOT NULL,
    forwarded_count BIGINT NOT NULL,
    is_verified SMALLINT NOT NULL,
    session_data TEXT NOT NULL,
    PRIMARY KEY (user_id, version, room_id, session_id)
);

-- MSC3814 dehydrated devices: at most one per user.
CREATE TABLE dehydrated_devices (
    user_id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    device_data TEXT NOT NULL,
    ts BIGINT NOT NULL
);

-- Highest position ever deleted from a stream whose rows are deleted (to_device), so a
-- restart never hands out a position a client has already been told about.
CREATE TABLE e2e_stream_high_water (
    stream TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
INSERT INTO e2e_stream_high_water (stream, position) VALUES ('to_device', 0);
