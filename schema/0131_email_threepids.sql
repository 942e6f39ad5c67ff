-- Email addresses of accounts and their validation sessions (docs/push.md "Email for accounts"). No identity server.

-- Addresses bound to accounts: one account per (medium, address). Bounded by users x addresses they add;
-- rows go when the user removes the address or is deactivated.
CREATE TABLE user_threepids (
    medium TEXT NOT NULL,
    address TEXT NOT NULL,          -- canonical (lower case)
    user_id TEXT NOT NULL,
    validated_at BIGINT NOT NULL,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (medium, address)
);
CREATE INDEX user_threepids_user_idx ON user_threepids (user_id);

-- requestToken sessions: the token (hashed) mailed to the address, what it is for and whether it was clicked.
-- Bounded: expired sessions are deleted when new ones are created.
CREATE TABLE threepid_validation_sessions (
    session_id TEXT PRIMARY KEY,
    medium TEXT NOT NULL,
    address TEXT NOT NULL,
    client_secret TEXT NOT NULL,
    purpose TEXT NOT NULL,          -- account | register | password
    token_hash TEXT NOT NULL,
    send_attempt BIGINT NOT NULL,
    next_link TEXT,
    created_ts BIGINT NOT NULL,
    expires_ts BIGINT NOT NULL,
    validated_at BIGINT,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    consumed BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX threepid_sessions_secret_idx ON threepid_validation_sessions (client_secret, medium, address, purpose);
CREATE INDEX threepid_sessions_expiry_idx ON threepid_validation_sessions (expires_ts);
