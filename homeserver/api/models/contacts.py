"""Bodies of SUP's contacts API (``/_matrix/client/unstable/org.sup.contacts``, docs/contacts.md)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator

from homeserver.api.models import Body, matrix_error, one_of

MAX_LISTS_PER_CONTACT = 50
MAX_NICKNAME = 256
LIST_NAME = re.compile(r"^[A-Za-z0-9._~-]{1,64}$")
POLICY_VALUES = ("anyone", "contacts")
Policy = Annotated[str, one_of(POLICY_VALUES, f"must be one of {', '.join(POLICY_VALUES)}")]


class ContactBody(Body):
    """``PUT /contacts/{userId}`` (optional body): a nickname and the lists the contact is on (absent: unchanged)."""

    nickname: Annotated[str, Field(max_length=MAX_NICKNAME)] | None = None
    lists: Annotated[list[str], Field(max_length=MAX_LISTS_PER_CONTACT)] | None = None

    @field_validator("nickname")
    @classmethod
    def _nickname(cls, v: str | None) -> str | None:
        if v is not None and "\x00" in v:
            raise matrix_error("M_INVALID_PARAM", "'nickname' must not contain NUL characters")
        return v

    @field_validator("lists")
    @classmethod
    def _lists(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        bad = [x for x in v if not LIST_NAME.match(x)]
        if bad:
            raise matrix_error("M_INVALID_PARAM", "list names must match [A-Za-z0-9._~-]{1,64}")
        return list(dict.fromkeys(v))


class ContactPolicyBody(Body):
    """``PUT /policy``: who may invite the user / open a DM with them. A field not sent keeps its value."""

    invites: Policy = "anyone"
    direct_messages: Policy = "anyone"

    def changes(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in ("invites", "direct_messages") if k in self.model_fields_set}


__all__ = ["LIST_NAME", "MAX_LISTS_PER_CONTACT", "MAX_NICKNAME", "POLICY_VALUES", "ContactBody", "ContactPolicyBody"]
