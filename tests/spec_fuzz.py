"""The loop both spec-driven fuzz tests share: every operation of an OpenAPI file, fed
schemathesis-generated valid and invalid cases, and the rule every answer must keep.

The client-server test (tests/fuzz/test_spec_fuzz.py) and the server-server test
(tests/federation/test_spec_fuzz_federation.py) differ only in how a case is sent
(bearer token vs. X-Matrix signature); that part is the ``send`` callback.
"""

from __future__ import annotations

from typing import Any, Callable

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# send(label, case) -> the response, or None when the callback already recorded a failure.
SendCase = Callable[[str, Any], "requests.Response | None"]


def _strategies(operation: Any) -> list[Any]:
    found = []
    for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
        try:
            found.append(operation.as_strategy(generation_mode=mode))
        except Exception:  # a mode schemathesis cannot build for this operation
            pass
    return found


def check_response(label: str, response: requests.Response, failures: list[str], detail: str = "",
                   upstream_ok: bool = False) -> None:
    """No 5xx (a 502/504 with a Matrix error is allowed when ``upstream_ok``: another server did not
    answer); every JSON 4xx carries a Matrix ``errcode``."""
    upstream = upstream_ok and response.status_code in (502, 504) and '"errcode"' in response.text
    if response.status_code >= 500 and not upstream:
        failures.append(f"{label} -> {response.status_code} {response.text[:200]} ({detail})")
    elif response.status_code >= 400 and response.headers.get("Content-Type", "").startswith("application/json"):
        try:
            parsed = response.json()
        except ValueError:
            parsed = None
        if not (isinstance(parsed, dict) and isinstance(parsed.get("errcode"), str)):
            failures.append(f"{label} -> {response.status_code} without a Matrix error body")


def fuzz_operations(schema: Any, examples: int, send: SendCase, skip: set[str] = frozenset()) -> None:
    """Run ``examples`` generated cases of every operation in ``schema`` through ``send``.

    Every operation that is not skipped must have been sent at least once: a fuzz run that sends
    nothing proves nothing."""
    unsent: list[str] = []
    for result in schema.get_all_operations():
        try:
            operation = result.ok()
        except Exception:
            continue  # an operation schemathesis cannot model; not the server's fault
        label = f"{operation.method.upper()} {operation.path}"
        strategies = _strategies(operation)
        if label in skip or not strategies:
            continue

        cases: list[None] = []

        @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(*strategies))
        def run(case: Any) -> None:
            cases.append(None)
            send(label, case)

        try:
            run()
        except Exception as e:  # generation problems in the spec itself are not server bugs
            if "Unsatisfiable" in type(e).__name__ or "InvalidArgument" in type(e).__name__:
                continue
            raise
        if not cases:
            unsent.append(label)
    assert not unsent, f"no case generated for {unsent}"
