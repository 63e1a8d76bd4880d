"""Dashboard pages of network policy: a peer's policy and usage bar, bulk changes from the
peer table, custom ACL profiles."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.api.test_dashboard_pages import PASSWORD, sign_in
from wirewarden.bootstrap import Container
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.domain.firewall import Quota
from wirewarden.services.account_schemas import UserCreate
from wirewarden.services.context import SYSTEM
from wirewarden.services.dns_schemas import DnsPolicyIn
from wirewarden.services.schemas import InterfaceCreate, PeerCreate
from wirewarden.store.dns import read_directory
from wirewarden.web.app import create_app
from wirewarden.web.ui.policy import policy_form_data

CSRF = ""  # the signed-in session's token, sent as a header by the client below


@pytest.fixture
def ui(container: Container) -> Iterator[TestClient]:
    container.users.create(UserCreate(name="alice", role="admin", password=PASSWORD), SYSTEM)
    with TestClient(create_app(container, run_loop=False)) as client:
        client.headers["x-csrf-token"] = sign_in(client, "alice")
        yield client


@pytest.fixture
def wg0(container: Container) -> str:
    container.interfaces.create(
        InterfaceCreate(name="wg0", address="10.9.0.1/24", endpoint="vpn.example.test"), SYSTEM
    )
    container.reconciler.reconcile()
    return "wg0"


def test_peer_policy_form_sets_every_field_and_shows_usage(
    ui: TestClient, container: Container, dataplane: FakeDataplane, wg0: str
) -> None:
    peer = container.peers.create(wg0, PeerCreate(name="laptop"), SYSTEM)
    page = ui.get(f"/peers/{peer.id}").text
    assert "Network policy" in page and f'href="/peers/{peer.id}/policy"' in page
    form = ui.get(f"/peers/{peer.id}/policy").text
    assert '<option value="internet-only"' in form
    bad = ui.post(
        f"/peers/{peer.id}/policy",
        data={
            "acl": "full",
            "rate_down_mbit": "-5",
            "rate_up_mbit": "0.001",
            "data_cap_gb": "lots",
            "csrf_token": CSRF,
        },
    )
    assert bad.status_code == 422
    assert 'id="e-rate_down_mbit"' in bad.text and "A speed cannot be negative." in bad.text
    assert 'id="e-data_cap_gb"' in bad.text and "Enter an amount in GB" in bad.text
    assert "Between 0.008 and 100000 Mbit/s" in bad.text  # the schema's kbit/s, in Mbit/s
    saved = ui.post(
        f"/peers/{peer.id}/policy",
        data={
            "acl": "internet-only",
            "mesh": "on",
            "rate_down_mbit": "20",
            "rate_up_mbit": "",
            "data_cap_gb": "2,5",
            "cap_reset_day": "3",
            "csrf_token": CSRF,
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    after = container.peers.get(peer.id)
    assert (after.acl, after.mesh, after.rate_down_kbit, after.rate_up_kbit) == (
        "internet-only",
        True,
        20000,
        None,
    )
    assert (after.data_cap_bytes, after.cap_reset_day) == (2_500_000_000, 3)
    (name,) = dataplane.quotas
    dataplane.quotas[name] = Quota(name, 2_500_000_000, 1_200_000_000)
    page = ui.get(f"/peers/{peer.id}").text
    assert '<meter id="usage-' in page and 'value="1200000000"' in page
    assert "20 Mbit/s" in page and "1.2 GB of 2.5 GB" in page
    form = ui.get(f"/peers/{peer.id}/policy").text
    assert 'name="rate_down_mbit" type="text" value="20"' in form and 'value="2.5"' in form
    assert "over the cap" not in page
    ui.post(f"/peers/{peer.id}/usage/reset", data={"csrf_token": CSRF})
    container.reconciler.reconcile()
    assert 'value="0"' in ui.get(f"/peers/{peer.id}").text


def test_bulk_policy_from_the_peer_table(ui: TestClient, container: Container, wg0: str) -> None:
    ids = [container.peers.create(wg0, PeerCreate(name=n), SYSTEM).id for n in ("a", "b", "c")]
    table = ui.get("/interfaces/wg0").text
    assert 'form="bulk-policy"' in table and 'name="peer"' in table
    done = ui.post(
        "/interfaces/wg0/policy",
        data={
            "peer": [str(ids[0]), str(ids[2])],
            "acl": "intranet-only",
            "rate_up_mbit": "5",
            "csrf_token": CSRF,
        },
    )
    assert done.status_code == 200 and "Changed 2 peers: a, c" in done.text
    got = [container.peers.get(i) for i in ids]
    assert [p.acl for p in got] == ["intranet-only", "full", "intranet-only"]
    assert [p.rate_up_kbit for p in got] == [5000, None, 5000]
    ui.post(
        "/interfaces/wg0/policy",
        data={"peer": [str(ids[0])], "rate_up_mbit": "0", "csrf_token": CSRF},
    )
    bad = ui.post(
        "/interfaces/wg0/policy",
        data={"peer": [str(ids[1])], "data_cap_gb": "much", "csrf_token": CSRF},
    )
    assert bad.status_code == 422 and "Data cap: Enter an amount in GB" in bad.text
    assert container.peers.get(ids[1]).data_cap_bytes is None
    assert container.peers.get(ids[0]).rate_up_kbit is None
    assert container.peers.get(ids[0]).acl == "intranet-only"  # unchanged
    none = ui.post("/interfaces/wg0/policy", data={"acl": "full", "csrf_token": CSRF})
    assert none.status_code == 422 and "Tick the peers" in none.text


def test_bulk_form_blocks_classes_only_when_asked(
    ui: TestClient, container: Container, wg0: str
) -> None:
    ids = [container.peers.create(wg0, PeerCreate(name=n), SYSTEM).id for n in ("a", "b")]
    assert 'name="set_block_apps"' in ui.get("/interfaces/wg0").text
    both = [str(i) for i in ids]
    blocked = ui.post(
        "/interfaces/wg0/policy",
        data={
            "peer": both,
            "set_block_apps": "on",
            "block_apps": ["bittorrent", "ssh"],
            "csrf_token": CSRF,
        },
    )
    assert blocked.status_code == 200 and "Changed 2 peers" in blocked.text
    assert [container.peers.get(i).block_apps for i in ids] == [["bittorrent", "ssh"]] * 2
    # Other changes leave the classes alone; the box ticked with none chosen unblocks.
    ui.post("/interfaces/wg0/policy", data={"peer": both, "mesh": "on", "csrf_token": CSRF})
    assert container.peers.get(ids[0]).block_apps == ["bittorrent", "ssh"]
    ui.post(
        "/interfaces/wg0/policy",
        data={"peer": [both[0]], "set_block_apps": "on", "csrf_token": CSRF},
    )
    assert [container.peers.get(i).block_apps for i in ids] == [[], ["bittorrent", "ssh"]]
    bad = ui.post(
        "/interfaces/wg0/policy",
        data={"peer": both, "set_block_apps": "on", "block_apps": "netflix", "csrf_token": CSRF},
    )
    assert bad.status_code == 422 and container.peers.get(ids[1]).block_apps == [
        "bittorrent",
        "ssh",
    ]


def test_custom_profiles_page(ui: TestClient, container: Container, wg0: str) -> None:
    listing = ui.get("/acl-profiles").text
    assert "internet-only" in listing and "built in" in listing
    bad = ui.post(
        "/acl-profiles/new",
        data={"name": "lanweb", "rules": "allow tcp 10.20.0.0/24 99999", "csrf_token": CSRF},
    )
    assert bad.status_code == 422 and 'id="e-rules"' in bad.text
    made = ui.post(
        "/acl-profiles/new",
        data={
            "name": "lanweb",
            "rules": "allow tcp 10.20.0.0/24 80\n# everything else on the LAN\ndeny 10.0.0.0/8",
            "default": "allow",
            "csrf_token": CSRF,
        },
        follow_redirects=False,
    )
    assert made.status_code == 303
    profile = container.profiles.get("lanweb")
    assert [(r.action, r.proto, r.cidr, r.ports) for r in profile.rules] == [
        ("allow", "tcp", "10.20.0.0/24", "80"),
        ("deny", "any", "10.0.0.0/8", None),
    ]
    assert profile.default == "allow"
    edit = ui.get("/acl-profiles/lanweb").text
    assert "allow tcp 10.20.0.0/24 80" in edit
    ui.post("/acl-profiles/lanweb", data={"rules": "deny 10.0.0.0/8", "csrf_token": CSRF})
    assert len(container.profiles.get("lanweb").rules) == 1
    ui.post("/acl-profiles/lanweb/delete", data={"csrf_token": CSRF})
    assert "lanweb" not in ui.get("/acl-profiles").text


def test_dns_policy_on_the_peer_page_and_in_bulk(
    ui: TestClient, container: Container, wg0: str
) -> None:
    container.dns.put_policy("kids", DnsPolicyIn(deny=["games.example"]), SYSTEM)
    a, b = (container.peers.create(wg0, PeerCreate(name=n), SYSTEM) for n in ("tab", "tv"))
    form = ui.get(f"/peers/{a.id}/policy").text
    assert '<option value="kids"' in form and 'name="dns_policy"' in form
    saved = ui.post(
        f"/peers/{a.id}/policy",
        data={**policy_form_data(a), "dns_policy": "kids", "csrf_token": CSRF},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert container.peers.get(a.id).dns_policy == "kids"
    assert "<dt>DNS filtering</dt><dd>kids</dd>" in ui.get(f"/peers/{a.id}").text
    with container.deps.sessions() as db:
        assert read_directory(db, "local").clients["10.9.0.2"].policy == "kids"
    bad = ui.post(
        f"/peers/{a.id}/policy",
        data={**policy_form_data(a), "dns_policy": "nope", "csrf_token": CSRF},
    )
    assert bad.status_code == 422 and 'id="e-dns_policy"' in bad.text
    # Bulk: the table's form offers the policies; "-" puts a peer back on the default.
    assert 'id="b-dns"' in ui.get("/interfaces/wg0").text
    ui.post(
        "/interfaces/wg0/policy",
        data={"peer": [str(a.id), str(b.id)], "dns_policy": "kids", "csrf_token": CSRF},
    )
    assert [container.peers.get(i).dns_policy for i in (a.id, b.id)] == ["kids", "kids"]
    ui.post(
        "/interfaces/wg0/policy",
        data={"peer": [str(a.id)], "dns_policy": "-", "csrf_token": CSRF},
    )
    assert [container.peers.get(i).dns_policy for i in (a.id, b.id)] == [None, "kids"]


def test_peer_policy_form_blocks_classes_of_traffic(
    ui: TestClient, container: Container, wg0: str
) -> None:
    peer = container.peers.create(wg0, PeerCreate(name="phone"), SYSTEM)
    form = ui.get(f"/peers/{peer.id}/policy").text
    assert 'name="block_apps" value="bittorrent"' in form
    data = {"acl": "full", "cap_reset_day": "1", "csrf_token": CSRF}
    saved = ui.post(
        f"/peers/{peer.id}/policy",
        data={**data, "block_apps": ["ssh", "bittorrent"]},
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    assert container.peers.get(peer.id).block_apps == ["bittorrent", "ssh"]
    assert "bittorrent, ssh" in ui.get(f"/peers/{peer.id}").text
    assert 'value="ssh" checked' in ui.get(f"/peers/{peer.id}/policy").text
    bad = ui.post(f"/peers/{peer.id}/policy", data={**data, "block_apps": ["napster"]})
    assert bad.status_code == 422
    assert '<fieldset class="field has-error">' in bad.text
    assert container.peers.get(peer.id).block_apps == ["bittorrent", "ssh"]
    # The boxes left empty: nothing blocked any more.
    ui.post(f"/peers/{peer.id}/policy", data=data, follow_redirects=False)
    assert container.peers.get(peer.id).block_apps == []
