"""Policy through the API: PATCH fields, custom profiles, usage, bad input, failed applies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from wirewarden.bootstrap import Container, build
from wirewarden.config import Settings
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.domain.firewall import Element, Quota
from wirewarden.domain.tcplan import ifb_name
from wirewarden.services.context import SYSTEM
from wirewarden.services.schemas import InterfaceCreate, PeerCreate, PeerUpdate

IFACES = "/api/v1/interfaces"
PEERS = "/api/v1/peers"
PROFILES = "/api/v1/acl-profiles"


@pytest.fixture
def peer(client: TestClient, container: Container) -> dict[str, Any]:
    assert client.post(IFACES, json={"name": "wg0", "address": "10.8.0.1/24"}).status_code == 201
    created = client.post(f"{IFACES}/wg0/peers", json={"name": "laptop"})
    assert created.status_code == 201
    container.reconciler.reconcile()  # the table exists, as after the first pass of serve
    result: dict[str, Any] = created.json()
    return result


def patch(client: TestClient, peer_id: int, **body: Any) -> Any:
    return client.patch(f"{PEERS}/{peer_id}", json=body)


def fields(response: Any) -> set[str]:
    body = response.json()
    return (
        {str(e["loc"][-1]) for e in body["detail"]}
        if isinstance(body["detail"], list)
        else {body.get("field")}
    )


def test_defaults_are_shown(client: TestClient, peer: dict[str, Any]) -> None:
    got = client.get(f"{PEERS}/{peer['id']}").json()
    assert (got["acl"], got["mesh"], got["rate_down_kbit"], got["data_cap_bytes"]) == (
        "full",
        False,
        None,
        None,
    )
    assert got["cap_reset_day"] == 1


def test_policy_fields_reach_the_kernel_as_set_elements(
    client: TestClient, peer: dict[str, Any], dataplane: FakeDataplane
) -> None:
    response = patch(client, peer["id"], acl="internet-only", mesh=True)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "applied"
    ip = peer["address"].split("/")[0]
    assert Element("acl4", ip, "jump acl_internet-only") in dataplane.elements
    assert Element("mesh4", f'"wg0" . {ip}') in dataplane.elements
    # Nothing left to do for the reconciler: the single-peer change matched the full plan.
    assert container_plan(client) == []
    patch(client, peer["id"], acl="full", mesh=False)
    assert not {e for e in dataplane.elements if ip in e.key}


def container_plan(client: TestClient) -> list[Any]:
    container: Container = client.app.state.container  # type: ignore[attr-defined]
    return container.reconciler.plan()[1]


def test_rates_make_classes_and_null_removes_them(
    client: TestClient, peer: dict[str, Any], dataplane: FakeDataplane
) -> None:
    assert patch(client, peer["id"], rate_down_kbit=20000, rate_up_kbit=5000).status_code == 200
    shape = dataplane.tc["wg0"]
    assert shape.down is not None and list(shape.down.classes.values()) == [20000]
    assert shape.up is not None and list(shape.up.classes.values()) == [5000]
    assert container_plan(client) == []
    assert patch(client, peer["id"], rate_down_kbit=None, rate_up_kbit=None).status_code == 200
    container: Container = client.app.state.container  # type: ignore[attr-defined]
    container.reconciler.reconcile()
    assert dataplane.tc["wg0"].down is None
    assert ifb_name("wg0").startswith("wwb")


def test_cap_makes_a_quota_and_usage_shows_it(
    client: TestClient, peer: dict[str, Any], dataplane: FakeDataplane
) -> None:
    assert patch(client, peer["id"], data_cap_bytes=5_000_000, cap_reset_day=3).status_code == 200
    (name,) = dataplane.quotas
    dataplane.quotas[name] = Quota(name, 5_000_000, 6_000_000)
    usage = client.get(f"{PEERS}/{peer['id']}/usage").json()
    assert usage["cap_bytes"] == 5_000_000 and usage["used_bytes"] == 6_000_000
    assert usage["over"] is True
    assert usage["period_start"] < usage["period_end"]
    # A cap below this period's usage is refused; a reset gives the allowance back.
    response = patch(client, peer["id"], data_cap_bytes=1_000_000)
    assert response.status_code == 422 and fields(response) == {"data_cap_bytes"}
    reset = client.post(f"{PEERS}/{peer['id']}/usage/reset")
    assert reset.status_code == 200
    container: Container = client.app.state.container  # type: ignore[attr-defined]
    container.reconciler.reconcile()
    assert client.get(f"{PEERS}/{peer['id']}/usage").json()["over"] is False
    assert list(dataplane.quotas) != [name]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rate_down_kbit": -1}, "rate_down_kbit"),
        ({"rate_up_kbit": 0}, "rate_up_kbit"),
        ({"data_cap_bytes": -5}, "data_cap_bytes"),
        ({"cap_reset_day": 29}, "cap_reset_day"),
        ({"cap_reset_day": 0}, "cap_reset_day"),
        ({"acl": "no-such-profile"}, "acl"),
        ({"acl": "Bad Name"}, "acl"),
        ({"mesh": "maybe"}, "mesh"),
    ],
)
def test_bad_policy_input_names_the_field(
    client: TestClient, peer: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    response = patch(client, peer["id"], **body)
    assert response.status_code == 422, response.text
    assert field in fields(response)


def test_custom_profile_crud_and_use(
    client: TestClient, peer: dict[str, Any], dataplane: FakeDataplane
) -> None:
    rules = [
        {"action": "allow", "cidr": "10.20.0.0/24", "proto": "tcp", "ports": "80"},
        {"action": "deny", "cidr": "10.20.0.0/16"},
    ]
    created = client.put(f"{PROFILES}/lanweb", json={"rules": rules, "default": "allow"})
    assert created.status_code == 201, created.text
    assert created.json()["rules"][0]["ports"] == "80"
    assert client.put(f"{PROFILES}/lanweb", json={"rules": rules}).status_code == 200
    names = [p["name"] for p in client.get(PROFILES).json()]
    assert names == ["full", "internet-only", "intranet-only", "lanweb"]
    assert patch(client, peer["id"], acl="lanweb").status_code == 200
    container: Container = client.app.state.container  # type: ignore[attr-defined]
    assert container.reconciler.reconcile().ok
    ip = peer["address"].split("/")[0]
    assert Element("acl4", ip, "jump acl_lanweb") in dataplane.elements
    assert client.get(f"{PROFILES}/lanweb").json()["peer_count"] == 1
    in_use = client.delete(f"{PROFILES}/lanweb")
    assert in_use.status_code == 409
    patch(client, peer["id"], acl="full")
    assert client.delete(f"{PROFILES}/lanweb").status_code == 204
    assert client.get(f"{PROFILES}/lanweb").status_code == 404


RULE_0 = ["body", "rules[0]"]  # a rule the service refused, named by its place
TCP_8 = {"cidr": "10.0.0.0/8", "proto": "tcp"}


@pytest.mark.parametrize(
    ("rule", "where", "why"),
    [
        ({"cidr": "10.20.0.1/24"}, RULE_0, "host bits set"),
        ({"cidr": "not-a-network"}, RULE_0, "not a valid network"),
        ({**TCP_8, "ports": "70000"}, RULE_0, "within 1-65535"),
        ({**TCP_8, "ports": "90-80"}, RULE_0, "low to high"),
        ({"cidr": "10.0.0.0/8", "ports": "80"}, RULE_0, "ports need proto"),
        ({"cidr": "10.0.0.0/8", "proto": "gre"}, ["body", "rules", 0, "proto"], "'tcp'"),
    ],
)
def test_bad_profile_rules_are_refused(
    client: TestClient, rule: dict[str, Any], where: list[Any], why: str
) -> None:
    """Refused with the rule (or its field) named and the reason said: a 422 alone would
    pass for a refusal of anything in the body."""
    response = client.put(f"{PROFILES}/bad", json={"rules": [rule]})
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == where and why in error["msg"], error


def test_overlapping_rules_are_refused(client: TestClient) -> None:
    rules = [{"action": "deny", "cidr": "10.0.0.0/8"}, {"cidr": "10.20.0.0/24"}]
    response = client.put(f"{PROFILES}/shadowed", json={"rules": rules})
    assert response.status_code == 422
    assert "overlaps" in response.text


def test_builtin_profiles_cannot_be_replaced(client: TestClient) -> None:
    assert client.put(f"{PROFILES}/full", json={"rules": []}).status_code == 409


def test_failed_apply_keeps_the_peer_in_error_until_the_reconciler_heals(
    client: TestClient, peer: dict[str, Any], dataplane: FakeDataplane
) -> None:
    dataplane.fail_on.add("update_firewall")
    response = patch(client, peer["id"], acl="intranet-only")
    assert response.status_code == 200
    assert response.json()["status"] == "error"
    ip = peer["address"].split("/")[0]
    assert not any(e.key == ip for e in dataplane.elements)  # previous rules in force
    dataplane.fail_on.clear()
    container: Container = client.app.state.container  # type: ignore[attr-defined]
    assert container.reconciler.reconcile().ok
    assert Element("acl4", ip, "jump acl_intranet-only") in dataplane.elements
    assert client.get(f"{PEERS}/{peer['id']}").json()["status"] == "applied"


def test_expired_peer_is_shown_expired(client: TestClient, peer: dict[str, Any]) -> None:
    response = patch(client, peer["id"], expires_at="2020-01-01T00:00:00Z")
    assert response.json()["status"] == "expired" and response.json()["expired"] is True


def test_cap_usage_is_restored_from_the_traffic_history(
    client: TestClient, peer: dict[str, Any], container: Container, dataplane: FakeDataplane
) -> None:
    """After a reboot the kernel has no quota: it comes back with what the history holds."""
    assert patch(client, peer["id"], data_cap_bytes=10_000_000).status_code == 200
    traffic = container.usage.traffic
    assert traffic is not None
    traffic.between = lambda peer_id, start, end: (3_000_000, 2_000_000)  # type: ignore[method-assign]
    assert container.usage.restore_from_history() == 1
    assert container.usage.restore_from_history() == 0  # nothing more to raise
    dataplane.remove_firewall()  # the reboot
    container.reconciler.reconcile()
    (cap,) = [p.cap for p in container.reconciler.desired().policy.peers if p.cap]
    assert cap.used_floor == 5_000_000
    assert client.get(f"{PEERS}/{peer['id']}/usage").json()["used_bytes"] == 5_000_000


def test_throttle_over_the_cap_slows_the_peer_instead_of_blocking(tmp_path: Path) -> None:
    fake = FakeDataplane()
    settings = Settings(
        data_dir=tmp_path / "t",
        public_host="vpn.example.test",
        cap_action="throttle",
        cap_throttle_kbit=512,
    )
    built = build(settings, dataplane=fake, stats_max_age=0)
    try:
        built.interfaces.create(InterfaceCreate(name="wg0", address="10.8.0.1/24"), SYSTEM)
        peer = built.peers.create("wg0", PeerCreate(name="laptop"), SYSTEM)
        built.reconciler.reconcile()
        quotas = [r for r in fake_script(built).splitlines() if "quota name" in r]
        assert quotas and not any("drop" in r for r in quotas)  # counted, never dropped
        built.peers.update(peer.id, PeerUpdate(data_cap_bytes=1000), SYSTEM)
        built.reconciler.reconcile()
        assert fake.tc.get("wg0") is None or fake.tc["wg0"].down is None  # under the cap
        (name,) = fake.quotas
        fake.quotas[name] = Quota(name, 1000, 5000)
        built.reconciler.reconcile()
        shape = fake.tc["wg0"]
        assert shape.down is not None and list(shape.down.classes.values()) == [512]
        assert shape.up is not None and list(shape.up.classes.values()) == [512]
    finally:
        built.engine.dispose()


def fake_script(container: Container) -> str:
    from wirewarden.domain import firewall

    desired = container.reconciler.desired()
    rs = firewall.ruleset(desired.nat, desired.uplink, desired.policy)
    return rs.skeleton.split("chain from_peer {")[1].split("\n\t}")[0]


def test_blocked_apps_reach_the_kernel_and_unknown_classes_are_refused(
    client: TestClient, peer: dict[str, Any], dataplane: FakeDataplane
) -> None:
    from wirewarden.domain.classify.steering import mark_of

    response = patch(client, peer["id"], block_apps=["ssh", "bittorrent", "ssh"])
    assert response.status_code == 200, response.text
    assert response.json()["block_apps"] == ["bittorrent", "ssh"]
    assert client.get(f"{PEERS}/{peer['id']}").json()["block_apps"] == ["bittorrent", "ssh"]
    ip = peer["address"].split("/")[0]
    assert Element("block4", f"{ip} . 0x{mark_of('bittorrent'):08x}") in dataplane.elements
    assert Element("block4", f"{ip} . 0x{mark_of('ssh'):08x}") in dataplane.elements
    assert container_plan(client) == []
    bad = patch(client, peer["id"], block_apps=["bittorrent", "netflix"])
    assert bad.status_code == 422
    assert [e["loc"][-2:] for e in bad.json()["detail"]] == [["block_apps", 1]]
    assert client.get(f"{PEERS}/{peer['id']}").json()["block_apps"] == ["bittorrent", "ssh"]
    assert patch(client, peer["id"], block_apps=[]).json()["block_apps"] == []
    assert not {e for e in dataplane.elements if e.set == "block4"}


def test_apps_show_the_peer_s_classified_traffic_and_no_one_else_s(
    client: TestClient,
    container: Container,
    peer: dict[str, Any],
    dataplane: FakeDataplane,
    client_of: Any,
    make_user: Any,
) -> None:
    from wirewarden.domain.classify.steering import mark_of
    from wirewarden.domain.firewall import AppCount, KernelCounts

    ip = peer["address"].split("/")[0]
    make_user("mia", "member")
    other = client.post(f"{IFACES}/wg0/peers", json={"name": "other", "owner": "mia"}).json()
    other_ip = other["address"].split("/")[0]
    dataplane.kernel_counts = KernelCounts(
        apps=(
            AppCount(ip, mark_of("http"), 10, 5_000, 2),
            AppCount(ip, mark_of("ssh"), 30, 9_000, 1),
            AppCount(ip, mark_of("http"), 2, 600),  # the reply direction's element, if apart
            AppCount(other_ip, mark_of("bittorrent"), 99, 99_999),
            AppCount(ip, 0x0000_0001, 1, 1),  # not a class: another tool's mark
        )
    )
    shown = client.get(f"{PEERS}/{peer['id']}/apps")
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["counting"] is True
    assert body["classes"] == [
        {"app": "ssh", "packets": 30, "bytes": 9_000, "flows": 1},
        {"app": "http", "packets": 12, "bytes": 5_600, "flows": 2},
    ]
    # A member sees their own device's classes, not another's peer (404, as for any read).
    mia = client_of(container.tokens.create("mia-t", ["read"], SYSTEM, owner="mia"))
    assert mia.get(f"{PEERS}/{other['id']}/apps").json()["classes"][0]["app"] == "bittorrent"
    assert mia.get(f"{PEERS}/{peer['id']}/apps").status_code in (403, 404)
    assert client.get(f"{PEERS}/999999/apps").status_code == 404


def test_the_peer_page_shows_its_traffic_by_class(
    container: Container,
    peer: dict[str, Any],
    dataplane: FakeDataplane,
    browser: Any,
    make_user: Any,
) -> None:
    from wirewarden.domain.classify.steering import mark_of
    from wirewarden.domain.firewall import AppCount, KernelCounts

    ip = peer["address"].split("/")[0]
    page = browser(make_user("root2", "admin")).get(f"/peers/{peer['id']}").text
    assert "Traffic by class" not in page  # nothing classified: no empty table
    dataplane.kernel_counts = KernelCounts(apps=(AppCount(ip, mark_of("tls"), 40, 2_000_000, 3),))
    container.collector.collect()  # the page reads the last day from the metrics store
    page = browser("root2").get(f"/peers/{peer['id']}").text
    section = page.split("data-apps>")[1].split("</section>")[0]
    assert 'data-app="tls"' in section and "2.0 MB" in section
    assert '<td data-label="Connections">3</td>' in section


def test_classified_traffic_lands_in_the_store_and_in_prometheus(
    client: TestClient, container: Container, peer: dict[str, Any], dataplane: FakeDataplane
) -> None:
    """Each collection pass adds what the kernel counted since the last one (a counter that
    starts again from zero counts whole), so `?since=` covers a window whatever happened
    to the kernel's table meanwhile; /metrics shows the kernel's running totals."""
    import time

    from wirewarden.domain.classify.steering import mark_of
    from wirewarden.domain.firewall import AppCount, KernelCounts

    ip = peer["address"].split("/")[0]
    before = client.get(f"{PEERS}/{peer['id']}/apps", params={"since": "2020-01-01T00:00:00Z"})
    assert before.status_code == 200 and before.json()["classes"] == []

    def kernel(*counts: AppCount) -> None:
        dataplane.kernel_counts = KernelCounts(apps=counts)
        time.sleep(0.002)  # a new dump, not the one the collector saw
        container.collector.collect()

    kernel(AppCount(ip, mark_of("tls"), 10, 1_000, 1), AppCount(ip, mark_of("ssh"), 1, 100, 1))
    kernel(AppCount(ip, mark_of("tls"), 30, 4_000, 3), AppCount(ip, mark_of("ssh"), 1, 100, 1))
    kernel(AppCount(ip, mark_of("tls"), 5, 500, 1))  # the table written whole: from zero
    stored = client.get(f"{PEERS}/{peer['id']}/apps", params={"since": "2020-01-01T00:00:00Z"})
    body = stored.json()
    assert body["since"].startswith("2020-01-01") and body["classes"] == [
        {"app": "tls", "packets": 35, "bytes": 4_500, "flows": 4},
        {"app": "ssh", "packets": 1, "bytes": 100, "flows": 1},
    ]
    # A window after all of it holds nothing; a bad time is the field's error.
    later = client.get(f"{PEERS}/{peer['id']}/apps", params={"since": "2999-01-01T00:00:00Z"})
    assert later.json()["classes"] == []
    bad = client.get(f"{PEERS}/{peer['id']}/apps", params={"since": "yesterday"})
    assert bad.status_code == 422 and "since" in bad.text
    # The kernel's running totals, per peer and class, for Prometheus.
    text = container.telemetry.exposition().decode()
    assert 'wirewarden_peer_app_bytes_total{interface="wg0",peer="laptop",app="tls"} 500' in text
    assert 'wirewarden_peer_app_flows_total{interface="wg0",peer="laptop",app="tls"} 1' in text


def test_server_names_are_kept_only_when_asked_and_shown_to_who_may_see_the_peer(
    client: TestClient,
    container: Container,
    peer: dict[str, Any],
    client_of: Any,
    make_user: Any,
    browser: Any,
) -> None:
    """WIREWARDEN_CLASSIFY_NAMES: what the classifier read (SNI, Host) per peer, by the
    hour, as long as the DNS query log; null when off; another user's peer is 404."""
    import time

    from wirewarden.dataplane.namesink import NameSink
    from wirewarden.domain.classify.names import Seen

    ip = peer["address"].split("/")[0]
    assert client.get(f"{PEERS}/{peer['id']}/apps").json()["names"] is None  # off
    sink = NameSink(Path("/nonexistent/never-bound"))
    container.collector.names = sink.drain
    container.usage.names = True
    told = [
        Seen(ip, "198.51.100.7", "tls", "shop.example.test"),
        Seen(ip, "198.51.100.8", "tls", "shop.example.test"),
        Seen("203.0.113.9", ip, "http", "blog.example.test"),  # the peer at either end
        Seen(ip, "198.51.100.7", "quic", "<b>bold</b>.test"),  # the sink drops it; escaped anyway
        Seen("10.99.0.9", "198.51.100.7", "tls", "not-ours.test"),  # no peer of ours
    ]
    for seen in told:
        sink.add(seen)
    sink.add(told[0])
    time.sleep(0.002)
    container.collector.collect()
    names = client.get(f"{PEERS}/{peer['id']}/apps").json()["names"]
    assert names == [
        {"app": "tls", "name": "shop.example.test", "flows": 3},
        {"app": "quic", "name": "<b>bold</b>.test", "flows": 1},
        {"app": "http", "name": "blog.example.test", "flows": 1},
    ]
    # The page shows them, escaped.
    page = browser(make_user("root3", "admin")).get(f"/peers/{peer['id']}").text
    section = page.split("data-app-names>")[1].split("</section>")[0]
    assert "shop.example.test" in section and "<b>bold</b>" not in section
    assert "&lt;b&gt;bold&lt;/b&gt;.test" in section
    # A member who may not see the peer sees none of it.
    make_user("nia", "member")
    nia = client_of(container.tokens.create("nia-t", ["read"], SYSTEM, owner="nia"))
    assert nia.get(f"{PEERS}/{peer['id']}/apps").status_code in (403, 404)
    # Kept as long as the DNS query log, then gone.
    store = container.collector.store
    now = int(time.time())
    store.retain(now + store.names_keep + 2 * 3600)
    assert client.get(f"{PEERS}/{peer['id']}/apps").json()["names"] == []
