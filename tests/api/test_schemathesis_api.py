"""Property-based calls to every operation of /openapi.json with an admin token: no answer
is a server error, and every answer fits the schema the document gives for its status.

Kept short for CI (a few generated cases per operation, derandomized so runs repeat)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from wirewarden.bootstrap import Container
from wirewarden.services.context import SYSTEM

EXAMPLES = 4
# These fetch blocklists named in the body (URLs or files): generated values must not make
# the test reach out to the network or read the host's files. test_dns_api covers them.
SKIP = {"PUT /api/v1/dns/policies/{name}", "POST /api/v1/dns/blocklists/refresh"}
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture
def seeded(client: TestClient) -> None:
    """Something for the generated calls to find: an interface with a peer."""
    assert client.post("/api/v1/interfaces", json={"name": "wg0"}).status_code == 201
    assert client.post("/api/v1/interfaces/wg0/peers", json={"name": "laptop"}).status_code == 201


def test_no_server_error_and_no_schema_breaking_answer(
    app: Any, container: Container, make_user: Any, seeded: None
) -> None:
    make_user("root", role="admin")  # a user's token, so the /auth routes have a user too
    token = container.tokens.create("fuzz", ["read", "write", "admin"], SYSTEM, owner="root")
    auth = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=auth)
    failures: list[str] = []
    seen: list[tuple[str, int]] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [op for op in operations if op.label not in SKIP]
    assert len(operations) > 30

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            response = case.call_and_validate(headers=auth, checks=CHECKS)
            seen.append((case.operation.label, response.status_code))

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {str(exc)[:2000]}")
    assert not failures, "\n\n".join(failures)
    assert len(seen) >= len(operations)  # every operation was called
