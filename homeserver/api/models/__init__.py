"""Typed request bodies: untrusted JSON validated once at the edge into these models.

Every model is strict (no silent coercion: ``"1"`` is not an integer, ``1`` is not a string) and frozen.
Unknown keys are ignored (the spec lets clients send extensions). The servlet layer turns a body into
its model with ``homeserver.http.models.parse_body``, which maps validation errors to the spec's codes:
a wrong type or shape is 400 ``M_BAD_JSON``, a missing required field ``M_MISSING_PARAM``, a bad value
``M_INVALID_PARAM``; a validator that needs another code raises :func:`matrix_error` with it.

The models live on the pure floor so handlers (which receive them) and servlets (which build them)
can both import them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

__all__ = ["Body", "matrix_error", "optional_str"]


class Body(BaseModel):
    """Base of every request body model: strict, frozen, extra keys ignored."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore", populate_by_name=True)


def matrix_error(errcode: str, message: str) -> PydanticCustomError:
    """A validation error carrying its Matrix errcode (``parse_body`` answers 400 with it)."""
    return PydanticCustomError(errcode, message)


def optional_str(value: Any, name: str) -> str | None:
    """``value`` if it is a string or absent (None); M_BAD_JSON otherwise."""
    if value is None or isinstance(value, str):
        return value
    raise matrix_error("M_BAD_JSON", f"'{name}' must be a string")
