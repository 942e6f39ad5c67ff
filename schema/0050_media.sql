-- Media repository: content blobs (deduplicated by sha256), local media items,
-- async-upload reservations, thumbnails, the remote media cache and repository facts.

-- One row per distinct stored blob. Media rows reference it by sha256; a blob no
-- row references is "orphaned" and removed by the cleanup job after a grace period.
CREATE TABLE media_content (
    sha256 TEXT PRIMARY KEY,
    length BIGINT NOT NULL,
    storage_key TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    orphaned_ts BIGINT                          -- NULL while referenced
);
CREATE INDEX media_content_orphaned_idx ON media_content (orphaned_ts);

-- Local media: uploaded here (POST upload) or reserved with POST /create.
CREATE TABLE local_media (
    media_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    upload_ts BIGINT,                           -- NULL: reserved by /create, not uploaded yet
    unused_expires_ts BIGINT,                   -- reservations only: when an unused id expires
    content_type TEXT,
    upload_name TEXT,
    length BIGINT NOT NULL DEFAULT 0,
    sha256 TEXT,
    last_access_ts BIGINT,
    quarantined_by TEXT,
    safe_from_quarantine SMALLINT NOT NULL DEFAULT 0
);
CREATE INDEX local_media_user_idx ON local_media (user_id, created_ts);
CREATE INDEX local_media_sha_idx ON local_media (sha256);
CREATE INDEX local_media_pending_idx ON local_media (unused_expires_ts);
CREATE INDEX local_media_access_idx ON local_media (last_access_ts);

-- Remote media fetched over federation and cached here.
CREATE TABLE remote_media_cache (
    origin TEXT NOT NULL,
    media_id TEXT NOT NULL,
    content_type TEXT,
    upload_name TEXT,
    length BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    fetched_ts BIGINT NOT NULL,
    last_access_ts BIGINT NOT NULL,
    quarantined_by TEXT,
    PRIMARY KEY (origin, media_id)
);
CREATE INDEX remote_media_cache_access_idx ON remote_media_cache (last_access_ts);
CREATE INDEX remote_media_cache_sha_idx ON remote_media_cache (sha256);

-- Thumbnails belong to content (sha256), so identical uploads share them.
CREATE TABLE media_thumbnails (
    sha256 TEXT NOT NULL,
    req_width INTEGER NOT NULL,
    req_height INTEGER NOT NULL,
    method TEXT NOT NULL,
    animated SMALLINT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    length BIGINT NOT NULL,
    storage_key TEXT NOT NULL,
    dynamic SMALLINT NOT NULL,
    created_ts BIGINT NOT NULL,
    PRIMARY KEY (sha256, req_width, req_height, method, animated)
);

-- Facts about the repository (e.g. when legacy unauthenticated access was frozen).
CREATE TABLE media_facts (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
