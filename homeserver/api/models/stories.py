"""Bodies of SUP's stories API (``/_matrix/client/unstable/org.sup.stories``, docs/stories.md)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from homeserver.api.models import Body, matrix_error, one_of

AUDIENCES = ("public", "contacts", "list", "shared_rooms")
MSGTYPES = ("m.text", "m.image", "m.video")
MAX_BODY = 4_000
MAX_INFO_BYTES = 4_096


def _no_nul(v: str, name: str) -> str:
    if "\x00" in v:
        raise matrix_error("M_INVALID_PARAM", f"{name} must not contain NUL characters")
    return v


class StoryContent(Body):
    """A story's content: text, or an image/video with its mxc:// URL (and a small ``info``)."""

    msgtype: Annotated[str, one_of(MSGTYPES, f"content.msgtype must be one of {', '.join(MSGTYPES)}")]
    body: Annotated[str, Field(max_length=MAX_BODY)]
    url: str | None = None
    info: dict[str, Any] | None = None

    @field_validator("body")
    @classmethod
    def _body(cls, v: str) -> str:
        return _no_nul(v, "content.body")

    @field_validator("info")
    @classmethod
    def _info(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None and len(json.dumps(v)) > MAX_INFO_BYTES:
            raise matrix_error("M_INVALID_PARAM", "content.info must be a small object")
        return v

    @model_validator(mode="after")
    def _media(self) -> StoryContent:
        if self.msgtype != "m.text" and (self.url is None or not self.url.startswith("mxc://")):
            raise matrix_error("M_INVALID_PARAM", "content.url must be an mxc:// URI for image and video stories")
        return self

    def event_content(self) -> dict[str, Any]:
        """The story event's content (a text story carries no url or info)."""
        out: dict[str, Any] = {"msgtype": self.msgtype, "body": self.body}
        if self.msgtype != "m.text":
            out["url"] = self.url
            if self.info is not None:
                out["info"] = self.info
        return out


class StoryAudienceSpec(Body):
    kind: Annotated[str, one_of(AUDIENCES, f"audience.kind must be one of {', '.join(AUDIENCES)}")]
    list: Annotated[str, Field(min_length=1, max_length=64)] | None = None

    @model_validator(mode="after")
    def _list(self) -> StoryAudienceSpec:
        if self.kind == "list" and self.list is None:
            raise matrix_error("M_MISSING_PARAM", "audience.list must name one of your contact lists")
        return self


class StoryPostBody(Body):
    """``POST /stories``. The lifetime's upper bound is configured (``stories.max_lifetime``): checked by the handler."""

    content: StoryContent
    audience: StoryAudienceSpec = StoryAudienceSpec(kind="contacts")
    lifetime_ms: int | None = None


class StoryReactBody(Body):
    """``POST /stories/{eventId}/react``: an emoji."""

    key: Annotated[str, Field(min_length=1, max_length=64)]

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        return _no_nul(v, "key")


class StoryReplyBody(Body):
    """``POST /stories/{eventId}/reply``: sent as a message in a direct chat with the author."""

    body: Annotated[str, Field(min_length=1, max_length=MAX_BODY)]

    @field_validator("body")
    @classmethod
    def _body(cls, v: str) -> str:
        return _no_nul(v, "body")


__all__ = ["AUDIENCES", "MAX_BODY", "MSGTYPES", "StoryAudienceSpec", "StoryContent", "StoryPostBody", "StoryReactBody",
           "StoryReplyBody"]
