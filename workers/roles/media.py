"""The media repository alone (``sup media-repo``, ``sup worker media``): same database and storage as main."""

from workers.roles import Role, wiring

ROLE = Role(
    "media",
    modules=wiring("foundation", "accounts", "media"),
    resources=("media", "admin", "metrics"),
    description="media upload, download, thumbnails and the media admin API",
    jobs=("media_jobs",),
)
