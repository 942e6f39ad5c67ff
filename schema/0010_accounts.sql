-- Accounts: users, devices, tokens (hashes only), registration tokens, profiles,
-- the user directory, account data and TOTP two-factor.

CREATE TABLE users (
    user_id TEXT PRIMARY KEY,                -- full user id, lower-cased localpart for new users
    password_hash TEXT,                      -- bcrypt of sha256(password); NULL: no password login
    is_admin SMALLINT NOT NULL DEFAULT 0,
    is_guest SMALLINT NOT NULL DEFAULT 0,
    deactivated SMALLINT NOT NULL DEFAULT 0,
    user_type TEXT,
    creation_ts BIGINT NOT NULL
);
CREATE INDEX users_lower_idx ON users (LOWER(user_id));

CREATE TABLE devices (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    display_name TEXT,
    last_seen_ts BIGINT,
    last_seen_ip TEXT,
    created_ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

-- Access tokens are stored as sha256 hex digests only.
CREATE TABLE access_tokens (
    id BIGINT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    device_id TEXT,
    session_id TEXT,                         -- refresh chain this token belongs to (NULL: not refreshable)
    valid_until_ms BIGINT,                   -- NULL: never expires
    created_ts BIGINT NOT NULL
);
CREATE INDEX access_tokens_user_device_idx ON access_tokens (user_id, device_id);
CREATE INDEX access_tokens_session_idx ON access_tokens (session_id);

CREATE TABLE refresh_tokens (
    id BIGINT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    device_id TEXT,
    session_id TEXT NOT NULL,
    expiry_ts BIGINT,                        -- NULL: never expires
    used_ts BIGINT,                          -- set once rotated; presenting it again revokes the session
    created_ts BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_user_device_idx ON refresh_tokens (user_id, device_id);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

-- Short-lived single-use m.login.token tokens (hashes only).
CREATE TABLE login_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    expiry_ts BIGINT NOT NULL
);

CREATE TABLE registration_tokens (
    token TEXT PRIMARY KEY,
    uses_allowed INTEGER,                    -- NULL: unlimited
    pending INTEGER NOT NULL DEFAULT 0,
    completed INTEGER NOT NULL DEFAULT 0,
    expiry_time BIGINT                       -- ms since epoch, NULL: never
);

-- Every profile field (displayname, avatar_url, m.tz, custom) as canonical JSON.
CREATE TABLE profile_fields (
    user_id TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (user_id, field)
);

-- Searchable, normalised (case-folded, accents stripped) view of local users.
CREATE TABLE user_directory (
    user_id TEXT PRIMARY KEY,
    search_text TEXT NOT NULL,
    display_name TEXT,
    avatar_url TEXT
);

-- Global (room_id = '') and per-room account data.
CREATE TABLE account_data (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    data_type TEXT NOT NULL,
    content TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id, data_type)
);
CREATE INDEX account_data_stream_idx ON account_data (user_id, stream_id);

CREATE TABLE totp_secrets (
    user_id TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    enabled SMALLINT NOT NULL DEFAULT 0,
    last_used_step BIGINT NOT NULL DEFAULT 0,
    created_ts BIGINT NOT NULL
);

CREATE TABLE totp_recovery_codes (
    user_id TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    used_ts BIGINT,
    PRIMARY KEY (user_id, code_hash)
);
