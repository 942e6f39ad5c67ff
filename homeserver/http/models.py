"""Validation at the edge: a request body becomes its typed model (homeserver/api/models) here, once.

``parse_body(request, Model)`` is what a servlet calls; handlers receive the model, never the raw JSON.
Validation errors become the spec's 400 answers:

- a required field missing → ``M_MISSING_PARAM``;
- a wrong JSON type or shape (a string where an object belongs, ``"1"`` for an integer) → ``M_BAD_JSON``;
- a value of the right type that is not allowed (unknown enum value, out of range, too long) → ``M_INVALID_PARAM``;
- a validator that raised ``matrix_error(code, ...)`` → that code.

Only the first error is reported (the spec's error body has one ``error`` string).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from homeserver.api.models import parse_value, validation_error
from homeserver.http.request import SupRequest

M = TypeVar("M", bound=BaseModel)
__all__ = ["parse_body", "parse_value", "validation_error"]


def parse_body(request: SupRequest, model: type[M], optional: bool = False, context: dict[str, Any] | None = None) -> M:
    """The request's JSON object body as ``model``. ``optional``: an empty body counts as ``{}``. ``context``: path
    parameters the model's validators need (e.g. the profile key a ``PUT /profile/{userId}/{keyName}`` body names)."""
    return parse_value(request.json_or_empty() if optional else request.json(), model, context)
