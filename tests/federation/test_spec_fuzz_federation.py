"""Spec-driven fuzzing of the server-server API: every operation in the spec's server-server
OpenAPI files, fed schemathesis-generated valid and invalid input, signed with a real X-Matrix
header by a remote server whose keys SUP fetches over TLS (so requests reach the handlers, not
only the auth check), must never give a 5xx, hang, or a 4xx JSON answer without a Matrix errcode.
A quarter of the cases keep the generated (garbage) Authorization header to attack the auth parser.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from typing import Any

import pytest
import requests
import schemathesis

from tests.spec_fuzz import check_response, fuzz_operations

SPEC_DIR = os.environ.get(
    "MATRIX_SPEC_SERVER_SERVER_DIR",
    os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "matrix-spec", "api", "server-server"),
)
SPEC_FILES = sorted(glob.glob(os.path.join(SPEC_DIR, "*.yaml")))
EXAMPLES_PER_OPERATION = int(os.environ.get("SUP_FED_FUZZ_EXAMPLES", "10"))


def _base_path(spec: Any) -> str:
    servers = spec.raw_schema.get("servers") or [{}]
    variables = servers[0].get("variables", {})
    return str(variables.get("basePath", {}).get("default", "/_matrix/federation/v1"))


def _signed(case_id: str) -> bool:
    return hashlib.sha256(case_id.encode()).digest()[0] % 4 != 0


@pytest.mark.skipif(not SPEC_FILES, reason="matrix-spec server-server OpenAPI files not found next to the repo")
@pytest.mark.parametrize("spec_file", SPEC_FILES, ids=[os.path.basename(p)[:-5] for p in SPEC_FILES])
def test_no_server_errors_from_spec_generated_federation_requests(make_federating_server: Any, fake_remote: Any, spec_file: str) -> None:
    sup = make_federating_server()
    schema = schemathesis.openapi.from_path(spec_file)
    base = sup.federation_url + _base_path(schema)
    session = requests.Session()
    failures: list[str] = []
    signed_statuses: list[bool] = []  # per signed request: refused by X-Matrix auth?
    sup_ca = fake_remote.ca.ca_path

    def send(label: str, case: Any) -> None:
        kwargs = case.as_transport_kwargs(base_url=base)
        headers = {k: v for k, v in (kwargs.get("headers") or {}).items() if k.lower() not in ("x-schemathesis-testcaseid",)}
        body = kwargs.get("json")
        data = kwargs.get("data")
        req = requests.Request(kwargs["method"], kwargs["url"], params=kwargs.get("params"), headers=headers,
                               data=json.dumps(body).encode() if body is not None else data)
        prepared = req.prepare()
        if body is not None:
            prepared.headers["Content-Type"] = "application/json"
        if _signed(case.id):
            signed_body = body if isinstance(body, (dict, list)) else None
            prepared.headers["Authorization"] = fake_remote.auth_header(sup.server_name, prepared.method, prepared.path_url, signed_body)
        try:
            response = session.send(prepared, verify=sup_ca, timeout=20)
        except requests.RequestException as e:
            failures.append(f"{label}: {type(e).__name__} for {case.path_parameters} {case.query}")
            return
        if _signed(case.id):
            signed_statuses.append(response.status_code == 401 and '"M_UNAUTHORIZED"' in response.text)
        detail = f"path={case.path_parameters} query={case.query} body={str(body if body is not None else data)[:200]}"
        check_response(label, response, failures, detail)

    fuzz_operations(schema, EXAMPLES_PER_OPERATION, send)
    # The signed requests must get past X-Matrix auth (else this test would only fuzz the auth check).
    assert not signed_statuses or not all(signed_statuses), "every signed request was refused by X-Matrix auth"
    assert not failures, "server errors:\n" + "\n".join(failures[:30])
