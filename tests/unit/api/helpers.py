"""What the body-model tables share: a malformed body must be refused with the spec's 400 errcode."""

from __future__ import annotations

from typing import Any

import pytest

from homeserver.api.errors import MatrixError
from homeserver.http.models import parse_value


def assert_refused(model: Any, body: Any, errcode: str, context: dict[str, Any] | None = None) -> MatrixError:
    """``body`` parsed as ``model`` is a 400 with ``errcode`` and a message; the error, for further checks."""
    with pytest.raises(MatrixError) as e:
        parse_value(body, model, context)
    assert (e.value.status, e.value.errcode) == (400, errcode), (body, e.value.errcode, e.value.msg)
    assert e.value.msg
    return e.value
