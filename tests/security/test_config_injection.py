"""Config injection (hardening #1): no value a user sends may add a line to a config that
`wg-quick up` runs as root, on a client or on the server."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wirewarden.bootstrap import Container
from wirewarden.domain import render
from wirewarden.domain.keys import generate_keypair
from wirewarden.domain.state import InterfaceState, PeerState
from wirewarden.domain.wgconf import parse_wg_quick
from wirewarden.store.tables import Tenant

HOOK = "PreUp = touch pwned #"
# The attacks the adversarial test ran, each a value that `ipaddress` or the old endpoint
# check let through with a line of its own behind it.
ADDRESS_ATTACKS = (
    f"fe80::1%q\n{HOOK}",
    f"fe80::1%q\r{HOOK}",
    f"10.0.0.0/8\n{HOOK}",
    "fe80::%x/128",
)
ENDPOINT_ATTACKS = (
    f"[::1]\n[Interface]\n{HOOK}",
    f"[::1]:51820\n{HOOK}",
    f"[::1]x{HOOK}",
    f"vpn.example.com\n{HOOK}",
    "vpn.example.com # comment",
    "host=evil",
)
HOOKS = re.compile(r"^\s*(PreUp|PostUp|PreDown|PostDown|SaveConfig|Table|FwMark)\b", re.I | re.M)


def csrf(session: TestClient) -> dict[str, str]:
    return {"X-CSRF-Token": session.csrf}  # type: ignore[attr-defined]


@pytest.fixture
def wg0(client: TestClient) -> str:
    body = {"name": "wg0", "address": "10.8.0.1/24", "endpoint": "vpn.example.com"}
    assert client.post("/api/v1/interfaces", json=body).status_code == 201
    return "wg0"


@pytest.fixture
def tenant_admin(container: Container, make_user: Any, browser: Any) -> TestClient:
    with container.deps.sessions.begin() as db:
        db.add(Tenant(name="acme"))
    make_user("boss", role="tenant-admin", tenant="acme")
    boss: TestClient = browser("boss")
    created = boss.post(
        "/api/v1/interfaces",
        json={"name": "acme0", "address": "10.9.0.1/24", "endpoint": "vpn.example.com"},
        headers=csrf(boss),
    )
    assert created.status_code == 201, created.text
    return boss


def assert_clean(text: str) -> None:
    assert not HOOKS.search(text), text
    assert "pwned" not in text


@pytest.mark.parametrize(
    ("field", "value"),
    [("dns", v) for v in ADDRESS_ATTACKS] + [("endpoint", v) for v in ENDPOINT_ATTACKS],
)
def test_tenant_admin_cannot_put_a_hook_into_members_configs(
    tenant_admin: TestClient, client: TestClient, field: str, value: str
) -> None:
    response = tenant_admin.patch(
        "/api/v1/interfaces/acme0", json={field: value}, headers=csrf(tenant_admin)
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == field
    peer = client.post("/api/v1/interfaces/acme0/peers", json={"name": "member"}).json()
    config = client.get(f"/api/v1/peers/{peer['id']}/config").text
    assert_clean(config)
    assert "Endpoint = vpn.example.com:" in config  # the interface kept its own values


@pytest.mark.parametrize("value", ADDRESS_ATTACKS)
def test_routed_ips_cannot_put_a_hook_into_the_server_export(
    client: TestClient, wg0: str, value: str
) -> None:
    response = client.post(
        f"/api/v1/interfaces/{wg0}/peers", json={"name": "site", "routed_ips": value}
    )
    assert response.status_code == 422
    peer = client.post(f"/api/v1/interfaces/{wg0}/peers", json={"name": "site"}).json()
    patched = client.patch(f"/api/v1/peers/{peer['id']}", json={"routed_ips": value})
    assert patched.status_code == 422
    assert_clean(client.get(f"/api/v1/interfaces/{wg0}/config").text)


@pytest.mark.parametrize("value", ADDRESS_ATTACKS)
def test_member_cannot_put_a_hook_into_their_own_config(
    client: TestClient, wg0: str, make_user: Any, browser: Any, value: str
) -> None:
    make_user("mallory")
    mallory: TestClient = browser("mallory")
    peer = mallory.post(
        f"/api/v1/interfaces/{wg0}/peers", json={"name": "phone"}, headers=csrf(mallory)
    ).json()
    response = mallory.patch(
        f"/api/v1/peers/{peer['id']}", json={"allowed_ips": value}, headers=csrf(mallory)
    )
    assert response.status_code == 422
    assert_clean(mallory.get(f"/api/v1/peers/{peer['id']}/config").text)


# ---- the renderer's own guard, whatever validated the value ----

KEY = generate_keypair()


@pytest.mark.parametrize("field", ["endpoint", "dns", "addresses", "allowed_ips", "name"])
def test_renderer_refuses_a_value_that_would_add_a_line(field: str) -> None:
    values: dict[str, Any] = {
        "endpoint": "vpn.example.com:51820",
        "dns": ("10.8.0.1",),
        "addresses": ("10.8.0.2/32",),
        "allowed_ips": ("0.0.0.0/0",),
        "name": "laptop",
    }
    values[field] = f"x\n{HOOK}" if field in ("endpoint", "name") else (f"x\n{HOOK}",)
    cfg = render.ClientConfig(
        private_key=KEY.private_key, server_public_key=KEY.public_key, **values
    )
    with pytest.raises(render.UnsafeValue):
        render.client_config(cfg)


def test_renderer_refuses_an_unsafe_server_value() -> None:
    iface = InterfaceState(
        name="wg0",
        private_key=KEY.private_key,
        listen_port=51820,
        addresses=("10.8.0.1/24",),
        mtu=1420,
        peers={KEY.public_key: PeerState(KEY.public_key, (f"10.8.0.2/32\n{HOOK}",))},
    )
    with pytest.raises(render.UnsafeValue):
        render.server_config(iface)


# ---- property: arbitrary text in every field of every route ----

# Text an attacker would try: config syntax, line breaks of every kind, scope ids, and
# arbitrary Unicode around valid values.
TRICKY = st.sampled_from(
    ["\n", "\r", "\x0b", "\x0c", "\x85", "\u2028", "#", "=", "%", "[", "]", ":", ",", " ", "/"]
)
VALID = st.sampled_from(
    ["10.8.0.0/24", "fd00::/64", "10.8.0.7", "fe80::1", "vpn.example.com", "[::1]:51820", "1.1.1.1"]
)
# A valid value, a way out of it, and a line of the attacker's.
INJECTED = st.builds(
    "".join,
    st.tuples(VALID, st.sampled_from(["%x\n", "\n", "%q\r", "]\n", "%\u2028"]), st.just(HOOK)),
)
TEXT = st.one_of(
    INJECTED,
    st.text(max_size=40),
    st.lists(st.one_of(VALID, TRICKY, st.text(max_size=5)), max_size=8).map("".join),
)
FIELDS = {
    "dns": ("interface", "dns"),
    "endpoint": ("interface", "endpoint"),
    "allowed_ips": ("peer", "allowed_ips"),
    "routed_ips": ("peer", "routed_ips"),
}


def configs(client: TestClient, peer_id: int) -> list[str]:
    return [
        client.get(f"/api/v1/peers/{peer_id}/config").text,
        client.get("/api/v1/interfaces/wg0/config").text,
    ]


def keys_of(text: str) -> list[str]:
    """The keys of every setting line, as wg-quick splits them (at '#' then '=')."""
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("["):
            out.append(line.split("=", 1)[0].strip())
    return out


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(field=st.sampled_from(sorted(FIELDS)), value=TEXT)
def test_any_text_in_any_field_renders_configs_with_only_our_keys(
    client: TestClient, wg0: str, field: str, value: str
) -> None:
    peer = client.get("/api/v1/interfaces/wg0/peers").json()["items"]
    peer_id = (
        peer[0]["id"]
        if peer
        else client.post("/api/v1/interfaces/wg0/peers", json={"name": "victim"}).json()["id"]
    )
    kind, name = FIELDS[field]
    url = "/api/v1/interfaces/wg0" if kind == "interface" else f"/api/v1/peers/{peer_id}"
    response = client.patch(url, json={name: value})
    assert response.status_code in (200, 422), response.text
    client_conf, server_conf = configs(client, peer_id)
    # wg-quick reads lines from a file: splitlines() breaks at every line boundary any
    # reader might honour, a stricter test than wg-quick's own '\n'.
    assert set(keys_of(client_conf)) <= {
        "PrivateKey",
        "Address",
        "DNS",
        "MTU",
        "PublicKey",
        "PresharedKey",
        "Endpoint",
        "AllowedIPs",
        "PersistentKeepalive",
    }
    assert len(client_conf.splitlines()) == len(client_conf.split("\n")) - 1
    parsed = parse_wg_quick(server_conf)  # our strict parser takes it whole
    assert set(keys_of(server_conf)) <= {
        "PrivateKey",
        "Address",
        "ListenPort",
        "MTU",
        "PublicKey",
        "PresharedKey",
        "AllowedIPs",
        "PersistentKeepalive",
    }
    assert len(server_conf.splitlines()) == len(server_conf.split("\n")) - 1
    assert parsed.interface.listen_port is not None
