"""Property-based calls to every operation of /openapi.json as each role (admin, tenant
admin, member): no answer is a server error, every answer fits the schema the document
gives for its status, and the caller's own token still works after every operation.

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
from wirewarden.store.tables import Tenant

EXAMPLES = 4
# These fetch blocklists named in the body (URLs or files): generated values must not make
# the test reach out to the network or read the host's files. test_dns_api covers them.
NETWORK = {"PUT /api/v1/dns/policies/{name}", "POST /api/v1/dns/blocklists/refresh"}
# Revoking a token by name is how a caller ends its own credential: generated names could
# hit it. test_tokens_audit_api revokes tokens, the caller's own included.
SELF_ENDING = {"DELETE /api/v1/tokens/{name}"}
SKIP = NETWORK | SELF_ENDING
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
# Who calls: (user, scopes of the token). The users are made by `seeded`.
ROLES = {
    "admin": ("root", ["read", "write", "admin"]),
    "tenant-admin": ("boss", ["read", "write"]),
    "member": ("carol", ["read", "write"]),
}


@pytest.fixture
def seeded(client: TestClient, container: Container, make_user: Any, client_of: Any) -> None:
    """Something for the generated calls to find: an interface with a peer in the default
    tenant; tenant acme with its admin, a member, an interface and the member's device."""
    assert client.post("/api/v1/interfaces", json={"name": "wg0"}).status_code == 201
    assert client.post("/api/v1/interfaces/wg0/peers", json={"name": "laptop"}).status_code == 201
    with container.deps.sessions.begin() as db:
        db.add(Tenant(name="acme"))
    make_user("root", role="admin")
    make_user("boss", role="tenant-admin", tenant="acme")
    make_user("carol", tenant="acme")
    boss = client_of(container.tokens.create("seed", ["read", "write"], SYSTEM, owner="boss"))
    assert boss.post("/api/v1/interfaces", json={"name": "acme0"}).status_code == 201
    device = {"name": "phone", "owner": "carol"}
    assert boss.post("/api/v1/interfaces/acme0/peers", json=device).status_code == 201


@pytest.mark.parametrize("role", sorted(ROLES))
def test_no_server_error_and_no_schema_breaking_answer(
    app: Any, client: TestClient, container: Container, seeded: None, role: str
) -> None:
    name, scopes = ROLES[role]
    token = container.tokens.create("fuzz", scopes, SYSTEM, owner=name)
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
        me = client.get("/api/v1/auth/me", headers=auth)
        if me.status_code != 200:
            failures.append(f"{operation.label} ended the caller's own token ({me.status_code})")
            break
    assert not failures, "\n\n".join(failures)
    assert len(seen) >= len(operations)  # every operation was called
