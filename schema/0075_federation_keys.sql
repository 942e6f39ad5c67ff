-- Federation keyring: other servers' verify keys, fetched from /_matrix/key/v2/server or a notary.
-- One row per (server, key id); old_verify_keys are kept with valid_until_ts = their expired_ts.
-- response_json is the server's own signed answer that listed the key (served again by our notary).
-- Bounded by the servers we talk to; keys whose validity ended long ago are pruned by the keyring.
CREATE TABLE server_verify_keys (
    server_name TEXT NOT NULL,
    key_id TEXT NOT NULL,
    verify_key TEXT NOT NULL,                -- unpadded base64 ed25519 public key
    valid_until_ts BIGINT NOT NULL,
    expired_ts BIGINT,                       -- set for keys listed in old_verify_keys
    fetched_ts BIGINT NOT NULL,
    response_json TEXT NOT NULL,
    PRIMARY KEY (server_name, key_id)
);
