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

from typing import Annotated, Any, Mapping, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, ValidationInfo
from pydantic_core import PydanticCustomError

from homeserver.api.errors import Codes, MatrixError
from homeserver.types.ids import InvalidId, UserID

__all__ = ["Body", "UserIdStr", "matrix_error", "one_of", "optional_str", "parse_value", "user_id_value", "validation_error"]
M = TypeVar("M", bound=BaseModel)


class Body(BaseModel):
    """Base of every request body model: strict, frozen, extra keys ignored."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore", populate_by_name=True)


def matrix_error(errcode: str, message: str) -> PydanticCustomError:
    """A validation error carrying its Matrix errcode (``parse_body`` answers 400 with it)."""
    return PydanticCustomError(errcode, message)


def one_of(allowed: tuple[Any, ...], message: str, errcode: str = "M_INVALID_PARAM") -> AfterValidator:
    """A field's check that its (already typed) value is one of ``allowed``; ``errcode`` with ``message`` otherwise.
    Use as ``Annotated[str, one_of(VALUES, "...")]`` (``allowed`` a tuple: an unhashable value is simply not in it)."""

    def check(v: Any) -> Any:
        if v not in allowed:
            raise matrix_error(errcode, message)
        return v

    return AfterValidator(check)


def optional_str(value: Any, name: str) -> str | None:
    """``value`` if it is a string or absent (None); M_BAD_JSON otherwise."""
    if value is None or isinstance(value, str):
        return value
    raise matrix_error("M_BAD_JSON", f"'{name}' must be a string")


def user_id_value(value: str, where: str) -> str:
    """``value`` if it is a well-formed user id; M_INVALID_PARAM naming the field ``where`` otherwise."""
    try:
        UserID.parse(value)
    except InvalidId as e:
        raise matrix_error("M_INVALID_PARAM", f"Invalid user id in '{where}': {e}") from None
    return value


def _user_id_field(value: str, info: ValidationInfo) -> str:
    return user_id_value(value, info.field_name or "body")


#: A field holding one user id: a string (M_BAD_JSON otherwise) that parses as a user id (M_INVALID_PARAM otherwise).
UserIdStr = Annotated[str, AfterValidator(_user_id_field)]


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


def parse_value(value: Mapping[str, Any], model: type[M], context: dict[str, Any] | None = None) -> M:
    """``value`` (already-parsed JSON) as ``model``, or the spec's 400. ``context``: what the body's meaning
    depends on outside the body (a path parameter), for the model's validators."""
    try:
        return model.model_validate(value, context=context)
    except ValidationError as e:
        raise validation_error(e) from None
