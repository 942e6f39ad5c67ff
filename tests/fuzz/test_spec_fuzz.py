"""Attack the server with requests generated from the spec's own OpenAPI files.

schemathesis generates valid and invalid requests for every operation in
``../shared/matrix-spec/api/client-server/*.yaml`` and sends them to a real
server over HTTP. Whatever it sends, the server must answer without a 5xx and
with a JSON Matrix error for 4xx. Every 5xx found is a bug to fix, not to silence.
"""

from __future__ import annotations

import glob
import os
import uuid
from typing import Any

import pytest
import requests
import yaml

schemathesis = pytest.importorskip("schemathesis")
from tests.harness import TestServer  # noqa: E402
from tests.spec_fuzz import check_response, fuzz_operations  # noqa: E402

SPEC_DIR = os.environ.get(
    "MATRIX_SPEC_CLIENT_SERVER_DIR",
    os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "matrix-spec", "api", "client-server"),
)
SPEC_FILES = sorted(glob.glob(os.path.join(SPEC_DIR, "*.yaml")))
EXAMPLES_PER_OPERATION = int(os.environ.get("SUP_FUZZ_EXAMPLES", "8"))
# Storage engines to fuzz: "both" (default, what CI runs), "sqlite" or "postgres".
FUZZ_ENGINE = os.environ.get("SUP_FUZZ_ENGINE", "both").lower()
FUZZ_ENGINES = ["sqlite", "postgres"] if FUZZ_ENGINE == "both" else [FUZZ_ENGINE]
# Long-poll endpoints legitimately wait for ``timeout`` ms; keep generated waits short so a
# correct long-poll is not mistaken for a hang (a real hang still trips the request timeout).
LONG_POLL_MAX_TIMEOUT_MS = 1000
# Endpoints that would end the fuzzing user's session or are not served by this process.
SKIP_OPERATIONS = {"POST /logout/all", "POST /logout", "POST /account/deactivate"}


def _base_path(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    for server in raw.get("servers", []):
        base = server.get("variables", {}).get("basePath", {}).get("default")
        if base is not None:
            return base
    return "/_matrix/client/v3"


def _register(srv: TestServer) -> str:
    body: dict[str, Any] = {"username": "fuzz" + uuid.uuid4().hex[:8], "password": "fuzz-password-1", "auth": {"type": "m.login.dummy"}}
    r = srv.post("/_matrix/client/v3/register", json=body)
    if r.status_code == 401 and "session" in r.json():
        body["auth"]["session"] = r.json()["session"]
        r = srv.post("/_matrix/client/v3/register", json=body)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


@pytest.fixture(scope="module", params=FUZZ_ENGINES)
def fuzz_server(request: pytest.FixtureRequest, tmp_path_factory: Any):
    from tests.harness import IN_CI, PostgresUnavailable

    try:
        srv = TestServer(str(tmp_path_factory.mktemp(f"fuzz-{request.param}")), request.param).start()
    except PostgresUnavailable as e:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but unavailable: {e}")
        pytest.skip(f"PostgreSQL unavailable: {e}")
    yield srv
    srv.stop()


def _clamp_long_poll(query: Any) -> Any:
    if isinstance(query, dict) and "timeout" in query:
        try:
            if int(str(query["timeout"])) > LONG_POLL_MAX_TIMEOUT_MS:
                query = dict(query, timeout=LONG_POLL_MAX_TIMEOUT_MS)
        except ValueError:
            pass  # not a number: the server must refuse it with 400
    return query


@pytest.mark.skipif(not SPEC_FILES, reason="matrix-spec OpenAPI files not found next to the repo")
@pytest.mark.parametrize("spec_file", SPEC_FILES, ids=[os.path.basename(p)[:-5] for p in SPEC_FILES])
def test_no_server_errors_from_spec_generated_requests(fuzz_server: TestServer, spec_file: str) -> None:
    """Every operation in this spec file, fed generated valid and invalid input, never yields a 5xx."""
    schema = schemathesis.openapi.from_path(spec_file)
    base_url = fuzz_server.url + _base_path(spec_file)
    token = _register(fuzz_server)
    failures: list[str] = []

    def send(label: str, case: Any) -> None:
        headers = dict(case.headers or {})
        headers["Authorization"] = f"Bearer {token}"
        case.query = _clamp_long_poll(case.query)
        try:
            response = case.call(base_url=base_url, headers=headers, timeout=20)
        except requests.RequestException as e:  # a hang or reset is as bad as a 500
            failures.append(f"{label}: {type(e).__name__} for {case.path_parameters} {case.query}")
            return
        # 502/504 with a Matrix error is an honest "that other server did not answer" (e.g. /publicRooms
        # with a generated server= name); any other 5xx is a bug.
        detail = f"path={case.path_parameters} query={case.query} body={str(case.body)[:200]}"
        check_response(label, response, failures, detail, upstream_ok=True)

    fuzz_operations(schema, EXAMPLES_PER_OPERATION, send, SKIP_OPERATIONS)
    assert not failures, "server errors:\n" + "\n".join(failures[:30])
