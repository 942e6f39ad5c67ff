-- Stories (docs/stories.md): each user's stories are events of type org.sup.story in their own
-- story room (room type org.sup.stories) where the author is the only member. This index says
-- who may see each story (evaluated when it is read) and when it expires.
CREATE TABLE story_rooms (
    user_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL
);

CREATE TABLE stories (
    event_id TEXT PRIMARY KEY,
    author TEXT NOT NULL,
    room_id TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    expires_ts BIGINT NOT NULL,
    audience TEXT NOT NULL,          -- public | contacts | shared_rooms | list
    audience_list TEXT,              -- the contact list name when audience = list
    media TEXT NOT NULL DEFAULT '[]' -- JSON list of mxc:// URIs the story uses
);
CREATE INDEX stories_live ON stories (expires_ts);
CREATE INDEX stories_author ON stories (author, created_ts);

CREATE TABLE story_views (
    event_id TEXT NOT NULL,
    viewer TEXT NOT NULL,
    viewed_ts BIGINT NOT NULL,
    reaction TEXT,                   -- the viewer's reaction key (an emoji), if any
    PRIMARY KEY (event_id, viewer)
);

-- The direct chat a viewer's replies to an author's stories go to (created on the first reply).
CREATE TABLE story_reply_rooms (
    viewer TEXT NOT NULL,
    author TEXT NOT NULL,
    room_id TEXT NOT NULL,
    PRIMARY KEY (viewer, author)
);

-- Media of expired stories waiting for the purge job to decide whether anything else uses it.
CREATE TABLE story_media_pending (
    mxc TEXT PRIMARY KEY,
    queued_ts BIGINT NOT NULL
);
