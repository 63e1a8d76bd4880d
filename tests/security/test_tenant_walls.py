"""Tenants are walls (issue 16): acme's tenant admin, and a member of acme, walk every route
of /openapi.json and every dashboard page against beta's ids, with beta's names in every
query parameter and body that takes one. Each route with an id of beta's answers 403 or
404; no answer shows anything of beta's; beta is untouched afterwards (its tenant,
interface and kernel device, peer, users, DNS policy, token, session). On SQLite and
PostgreSQL.

Both tenants, their users, peers and DNS policies are made through the API, by the admin
and by each tenant's own admin, so the walk meets what a real installation holds; beta's
peer also has DNS lookups and traffic, and beta has audit events."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from tests.api.conftest import PASSWORD
from wirewarden.bootstrap import Container
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.domain.state import PeerStats
from wirewarden.services.mappings import Origin
from wirewarden.services.schemas import MappingIn
from wirewarden.store.tables import DnsPolicy, DnsQuery

API = "/api/v1"
# Every name of beta's holds this, so one search finds any of them in an answer.
MARK = "beta"
RANDOM_RUN = re.compile(r"[A-Za-z0-9_-]{24,}")


@dataclass
class World:
    peer_id: int  # beta's peer
    peer_key: str
    session_id: str  # of beta's admin
    mapping_id: int  # a port beta's peer publishes
    bob_token: str
    tokens: dict[str, str]  # of acme's admin (alice) and member (dave)


def _ok(response: Any, *codes: int) -> Any:
    assert response.status_code in codes, (response.request.url, response.text)
    return response.json() if response.content else None


@pytest.fixture
def world(
    client: TestClient,
    container: Container,
    dataplane: FakeDataplane,
    browser: Callable[..., TestClient],
    client_of: Callable[[str], TestClient],
) -> World:
    _ok(client.put(f"{API}/plans/small", json={"max_peers": 10}), 201)
    _ok(client.put(f"{API}/acl-profiles/office", json={}), 200, 201)
    for tenant in ("acme", "beta"):
        _ok(client.post(f"{API}/tenants", json={"name": tenant, "plan": "small"}), 201)
    users = [("alice", "tenant-admin", "acme"), ("betabob", "tenant-admin", "beta")]
    users += [("betacarol", "member", "beta"), ("dave", "member", "acme")]
    for name, role, tenant in users:
        body = {"name": name, "role": role, "tenant": tenant, "password": PASSWORD}
        _ok(client.post(f"{API}/users", json=body), 201)
    tokens = {}
    for name in ("alice", "betabob", "dave"):
        signed = browser(name)
        scopes = ["read", "write"] if name == "dave" else ["read", "write", "admin"]
        made = signed.post(
            f"{API}/tokens",
            json={"name": f"{name}-token", "scopes": scopes},
            headers={"X-CSRF-Token": signed.csrf},  # type: ignore[attr-defined]
        )
        tokens[name] = _ok(made, 200, 201)["token"]
    alice, bob = client_of(tokens["alice"]), client_of(tokens["betabob"])
    _ok(alice.post(f"{API}/interfaces/t-acme/peers", json={"name": "acme-phone"}), 201)
    peer = _ok(bob.post(f"{API}/interfaces/t-beta/peers", json={"name": "beta-phone"}), 201)
    _ok(bob.put(f"{API}/dns/policies/beta-dns", json={"deny": ["beta.example"]}), 201)
    _ok(bob.patch(f"{API}/peers/{peer['id']}", json={"dns_policy": "beta-dns"}), 200)
    # A blocklist of beta's own (set here: the walk must not depend on fetching one), and
    # lookups and traffic of beta's peer, for the log, stats, usage and top lists.
    with container.deps.sessions.begin() as db:
        own = {"blocklists": ["https://lists.example/beta-private.txt"]}
        db.execute(update(DnsPolicy).where(DnsPolicy.name == "beta-dns").values(**own))
        db.add(
            DnsQuery(
                at=datetime.now(UTC),
                peer_id=peer["id"],
                peer="beta-phone",
                client=peer["address"].split("/")[0],
                policy="beta-dns.beta",
                name="www.beta-secret.example",
                qtype="A",
                status="blocked",
                rcode="NXDOMAIN",
            )
        )
    # A port beta's peer publishes, registered as its client would (from its tunnel address
    # at its gateway): the mapping lists and removal must keep it beta's.
    _ok(client.patch(f"{API}/peers/{peer['id']}", json={"expose_ports": "8080"}), 200)
    gateway = _ok(client.get(f"{API}/tenants/beta"), 200)["interfaces"][0]["address"]
    origin = Origin(
        gateway.split("/")[0], peer["address"].split("/")[0], container.mappings.deps.node
    )
    mapping = container.mappings.register(origin, MappingIn(remote_port=8080, local_port=80))
    key = ("t-beta", peer["public_key"])
    dataplane.counters[key] = PeerStats("198.51.100.7:51000", int(time.time()), 5000, 90000)
    container.collector.collect()
    sessions = _ok(browser("betabob").get(f"{API}/auth/sessions"), 200)
    return World(
        peer_id=peer["id"],
        peer_key=peer["public_key"],
        session_id=str(sessions[0]["id"]),
        mapping_id=mapping.id,
        bob_token=tokens["betabob"],
        tokens=tokens,
    )


# What each path parameter names of beta's, by the path it is in.
NAMES = [
    (r"/interfaces/\{name\}", "t-beta"),
    (r"/tenants/\{name\}", "beta"),
    (r"/users/\{name\}", "betabob"),
    (r"/tokens/\{name\}", "betabob-token"),
    (r"/dns/policies/\{name\}", "beta-dns"),
    # Not beta's: plans and ACL profiles are global, for the admin to change.
    (r"/plans/\{name\}", "small"),
    (r"/acl-profiles/\{name\}", "office"),
    # The node holding beta's interface: the fleet's nodes are the admin's alone (403).
    (r"/nodes/\{name\}", "local"),
]
# Query parameters that can name something of beta's.
QUERY = {
    "interface": "t-beta",
    "name": "t-beta",
    "policy": "beta-dns",
    "q": "beta",
    "actor": "betabob",
    "target": "beta",
}
# Request bodies: beta's names wherever a body takes one; {} where nothing is required.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/interfaces"): {"name": "wgwalk"},
    ("POST", "/api/v1/interfaces/{name}/peers"): {"name": "intruder"},
    ("POST", "/api/v1/tenants/{name}/peers"): {"name": "intruder"},
    ("PATCH", "/api/v1/nodes/{name}"): {"drain": True},
    ("POST", "/api/v1/tenants"): {"name": "gamma"},
    ("PUT", "/api/v1/dns/tenants/{tenant}"): {"policy": None},
    ("POST", "/api/v1/auth/login"): {"name": "betabob", "password": "not the password"},
    ("POST", "/api/v1/auth/login/totp"): {"code": "000000"},
    ("POST", "/api/v1/auth/password"): {"current_password": "x", "new_password": PASSWORD},
    ("POST", "/api/v1/auth/totp/confirm"): {"code": "000000"},
    ("POST", "/api/v1/auth/totp/disable"): {"password": "x"},
    ("POST", "/api/v1/auth/recovery-codes"): {"password": "x"},
    ("POST", "/api/v1/users"): {"name": "intruder", "tenant": "beta", "password": PASSWORD},
    ("POST", "/api/v1/users/{name}/password"): {"password": PASSWORD + " again"},
    ("POST", "/api/v1/tokens"): {"name": "stolen", "user": "betabob"},
    ("PATCH", "/api/v1/peers/{peer_id}"): {"name": "stolen", "enabled": False},
    ("PATCH", "/api/v1/tenants/{name}"): {"enabled": False},
    ("PATCH", "/api/v1/users/{name}"): {"disabled": True},
    ("PATCH", "/api/v1/interfaces/{name}"): {"mtu": 1280},
    ("PUT", "/api/v1/dns/policies/{name}"): {"deny": ["stolen.example"]},
}
# Routes where a path parameter is not beta's and a 2xx is right:
SHARED = {
    # Global ACL profiles: every tenant's admin reads them, to give its peers one.
    ("GET", "/api/v1/acl-profiles/{name}"),
    ("GET", "/acl-profiles/{name}"),
    # Names of DNS policies are per tenant: these write and delete acme's own "beta-dns"
    # (checked below: beta's is unchanged).
    ("PUT", "/api/v1/dns/policies/{name}"),
    ("DELETE", "/api/v1/dns/policies/{name}"),
}


def _concrete(template: str, world: World) -> str:
    path = template.replace("{peer_id}", str(world.peer_id))
    path = path.replace("{mapping_id}", str(world.mapping_id))
    path = path.replace("{session_id}", world.session_id).replace("{tenant}", "beta")
    for pattern, value in NAMES:
        path = re.sub(pattern, lambda m, v=value: m.group(0).replace("{name}", v), path)
    assert "{" not in path, f"the walk does not know this parameter yet: {template}"
    return path


def _check(response: Any, method: str, template: str, world: World) -> None:
    where = f"{method} {template}: {response.status_code} {response.text[:300]}"
    assert response.status_code < 500, where
    if "{" in template and (method, template) not in SHARED:
        assert response.status_code in (403, 404), where
    if response.status_code >= 300 or (method, template) in SHARED:
        return  # an error may name what was asked for; it shows nothing else
    assert world.peer_key not in response.text, where
    # Random values (the CSRF token on every page, a new API token's secret) are long runs
    # of letters and digits that once in a while hold "beta" by chance, in any case; none
    # of beta's names is one (they are short, and dotted or dashed).
    shown = RANDOM_RUN.sub(" ", response.text).lower()
    assert MARK not in shown, where


def _state(client: TestClient, dataplane: FakeDataplane, world: World) -> Any:
    """Everything of beta's a walk could harm, as the admin and the kernel see it."""
    tenant = client.get(f"{API}/tenants/beta").json()
    peers = client.get(f"{API}/interfaces/t-beta/peers").json()
    users = {u["name"]: u for u in client.get(f"{API}/users?q=beta").json()["items"]}
    policy = client.get(f"{API}/dns/policies").json()
    with TestClient(client.app, headers={"Authorization": f"Bearer {world.bob_token}"}) as bob:
        own_policy = bob.get(f"{API}/dns/policies/beta-dns").json()
        me = bob.get(f"{API}/auth/me").status_code
        sessions = len(bob.get(f"{API}/auth/sessions").json())
    device = dataplane.devices["t-beta"]
    return (
        tenant["enabled"],
        tenant["plan"],
        tenant["dns_policy"],
        [(i["name"], i["mtu"], i["enabled"]) for i in tenant["interfaces"]],
        [(p["name"], p["enabled"]) for p in peers["items"]],
        sorted((n, u["disabled"], u["role"]) for n, u in users.items()),
        [p["name"] for p in policy],
        own_policy["deny"],
        me,
        sessions,
        sorted(device.peers),
        [(m["id"], m["remote_port"]) for m in client.get(f"{API}/mappings").json()],
        # A user the walk made, wherever it landed, must not be one of beta's.
        [u["name"] for u in client.get(f"{API}/users").json()["items"] if u["tenant"] == "beta"],
    )


@pytest.mark.parametrize("walker", ["alice", "dave"])
def test_every_api_route_walls_off_the_other_tenant(
    app: Any,
    client: TestClient,
    dataplane: FakeDataplane,
    client_of: Callable[[str], TestClient],
    world: World,
    walker: str,
) -> None:
    """As acme's tenant admin, and as a member of acme."""
    before = _state(client, dataplane, world)
    alice = client_of(world.tokens[walker])
    walked = 0
    paths = app.openapi()["paths"]
    routes = [(t, m, op) for t, ops in paths.items() for m, op in ops.items()]
    # The shared routes last: acme's own "beta-dns" they make would show (rightly) in the
    # lists and audit events read after them.
    routes.sort(key=lambda r: (r[1].upper(), r[0]) in SHARED)
    for template, method, operation in routes:
        params = {
            p["name"]: QUERY.get(p["name"], str(world.peer_id))
            for p in operation.get("parameters", [])
            if p["in"] == "query" and (p["name"] in QUERY or p["name"] == "peer_id")
        }
        path = _concrete(template, world)
        if method == "get":
            # The plain list, then each filter naming beta's alone (filters together
            # could match nothing and hide a leak).
            for one in [{}, *({k: v} for k, v in params.items())]:
                _check(alice.get(path, params=one), "GET", template, world)
        else:
            body = BODIES.get((method.upper(), template), {})
            kwargs = {"json": body} if "requestBody" in operation else {}
            response = alice.request(method.upper(), path, params=params, **kwargs)
            _check(response, method.upper(), template, world)
        walked += 1
    assert walked >= 60
    assert _state(client, dataplane, world) == before


def _dashboard_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every page and form of the dashboard."""
    found = []
    for route in app.router.routes:
        router = getattr(route, "original_router", None)
        for r in router.routes if router is not None else [route]:
            path, methods = getattr(r, "path", ""), getattr(r, "methods", None)
            if not methods or getattr(r, "include_in_schema", True) or path.startswith(API):
                continue
            if path in ("/openapi.json", "/docs") or path.startswith(("/s/", "/static/")):
                continue  # the API's description, share links (their token), files
            found += [(m, path) for m in sorted(methods - {"HEAD"})]
    return found


@pytest.mark.parametrize("walker", ["alice", "dave"])
def test_every_dashboard_page_walls_off_the_other_tenant(
    app: Any,
    client: TestClient,
    dataplane: FakeDataplane,
    browser: Callable[..., TestClient],
    world: World,
    walker: str,
) -> None:
    before = _state(client, dataplane, world)
    routes = _dashboard_routes(app)
    assert len(routes) >= 60
    # Signing out, in or through the first run would end the walk, not cross a wall.
    skipped = ("/logout", "/login", "/login/2fa", "/login/enrol", "/setup")
    walked = 0
    # Pages first, in one session: each sign-in is an audit event, and a walk that signed
    # in for every page would push beta's events off the audit page before reaching it.
    reader = browser(walker)
    for method, template in routes:
        if method == "GET" and template not in skipped:
            response = reader.get(_concrete(template, world), follow_redirects=False)
            _check(response, method, template, world)
            walked += 1
    for method, template in routes:
        if method == "GET" or template in skipped:
            continue
        alice = browser(walker)  # fresh each time: a form may end the session it came in
        form = {"csrf_token": alice.csrf, "name": "walk", "enabled": "0"}  # type: ignore[attr-defined]
        response = alice.post(_concrete(template, world), data=form, follow_redirects=False)
        _check(response, method, template, world)
        walked += 1
    assert walked >= 60
    assert _state(client, dataplane, world) == before
