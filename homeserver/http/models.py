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

from typing import Any, Mapping, TypeVar

from pydantic import BaseModel, ValidationError

from homeserver.api.errors import Codes, MatrixError
from homeserver.http.request import SupRequest

M = TypeVar("M", bound=BaseModel)

# pydantic error types that mean "the JSON has the wrong type or shape" (the rest are bad values)
_SHAPE_ERRORS = frozenset({
    "model_type", "model_attributes_type", "dict_type", "list_type", "tuple_type", "set_type", "frozen_set_type",
    "string_type", "int_type", "float_type", "bool_type", "bytes_type", "none_required", "is_instance_of",
    "int_from_float", "union_tag_invalid", "union_tag_not_found", "dataclass_type", "iterable_type",
})


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def validation_error(err: ValidationError) -> MatrixError:
    """The Matrix error for the first problem pydantic found."""
    first = err.errors(include_url=False, include_input=False)[0]
    kind, where = first["type"], _location(tuple(first.get("loc", ())))
    if kind.startswith("M_"):
        return MatrixError(400, kind, first["msg"])
    if kind == "missing":
        return MatrixError(400, Codes.MISSING_PARAM, f"Missing '{where}'")
    if kind in _SHAPE_ERRORS or kind.endswith("_type"):
        return MatrixError(400, Codes.BAD_JSON, f"'{where}': {first['msg']}")
    return MatrixError(400, Codes.INVALID_PARAM, f"'{where}': {first['msg']}")


def parse_value(value: Mapping[str, Any], model: type[M]) -> M:
    """``value`` (already-parsed JSON) as ``model``, or the spec's 400."""
    try:
        return model.model_validate(value)
    except ValidationError as e:
        raise validation_error(e) from None


def parse_body(request: SupRequest, model: type[M], optional: bool = False) -> M:
    """The request's JSON object body as ``model``. ``optional``: an empty body counts as ``{}``."""
    return parse_value(request.json_or_empty() if optional else request.json(), model)
