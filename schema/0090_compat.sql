-- Client-server compatibility area (docs/compat.md).

-- Account moderation flags set by server admins (PUT /_matrix/client/v1/admin/lock|suspend/{userId}).
-- A user without a row is neither locked nor suspended.
CREATE TABLE user_flags (
    user_id TEXT PRIMARY KEY,
    locked SMALLINT NOT NULL DEFAULT 0,
    suspended SMALLINT NOT NULL DEFAULT 0,
    updated_ts BIGINT NOT NULL
);

-- OpenID tokens (POST /user/{userId}/openid/request_token), stored as sha256 digests only;
-- answered by GET /_matrix/federation/v1/openid/userinfo until they expire.
CREATE TABLE openid_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    expires_ts BIGINT NOT NULL
);
CREATE INDEX openid_tokens_expiry ON openid_tokens (expires_ts);
