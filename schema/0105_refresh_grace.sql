-- Refresh-token grace (spec: "the old refresh token remains valid until the new access token or refresh
-- token is used"). A rotated refresh token stays usable until a token issued for it is first used; then it is
-- consumed, and presenting it again is genuine reuse, which revokes the whole session.
ALTER TABLE refresh_tokens ADD COLUMN refreshed_from BIGINT;  -- the refresh token exchanged for this one
ALTER TABLE refresh_tokens ADD COLUMN consumed_ts BIGINT;     -- a successor was used: reuse now revokes
ALTER TABLE access_tokens ADD COLUMN refreshed_from BIGINT;   -- the refresh token exchanged for this one, until first use
CREATE INDEX refresh_tokens_refreshed_from_idx ON refresh_tokens (refreshed_from);
CREATE INDEX access_tokens_refreshed_from_idx ON access_tokens (refreshed_from);
