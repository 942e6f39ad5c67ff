-- URL previews (GET /_matrix/client/v1/media/preview_url), cached per URL until expires_ts.
CREATE TABLE url_previews (
    url TEXT PRIMARY KEY,
    og TEXT NOT NULL,               -- the OpenGraph JSON answered to clients
    fetched_ts BIGINT NOT NULL,
    expires_ts BIGINT NOT NULL
);
CREATE INDEX url_previews_expiry ON url_previews (expires_ts);
