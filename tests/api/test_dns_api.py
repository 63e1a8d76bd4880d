"""/api/v1/dns: policies, peers' policies, blocklists (HTTP with ETag), query log, stats."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from wirewarden.bootstrap import Container
from wirewarden.dns.lists import ListStore, local_lists_dir
from wirewarden.dns.logwriter import ProcessLogWriter
from wirewarden.dns.resolver import LogBatch, LogKey
from wirewarden.store.dns import DnsStore, log_ports, read_directory
from wirewarden.store.tables import DnsQuery

DNS = "/api/v1/dns"


def fields(response: Any) -> set[str]:
    return {str(e["loc"][-1]) for e in response.json()["detail"]}


@pytest.fixture
def peer(client: TestClient) -> dict[str, Any]:
    assert (
        client.post(
            "/api/v1/interfaces", json={"name": "wg0", "address": "10.8.0.1/24"}
        ).status_code
        == 201
    )
    response = client.post("/api/v1/interfaces/wg0/peers", json={"name": "laptop"})
    assert response.status_code == 201
    result: dict[str, Any] = response.json()
    return result


def test_default_policy_always_exists(client: TestClient) -> None:
    response = client.get(f"{DNS}/policies/default")
    assert response.status_code == 200
    assert response.json()["block_answer"] == "nxdomain" and response.json()["anti_bypass"]
    assert client.delete(f"{DNS}/policies/default").status_code == 409
    assert client.get(f"{DNS}/policies/nope").status_code == 404


def test_put_creates_then_replaces(client: TestClient, container: Container) -> None:
    body = {"deny": ["Ads.Example.com", "*.tracker.example"], "allow": ["ok.ads.example.com"]}
    created = client.put(f"{DNS}/policies/kids", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["deny"] == ["ads.example.com", "*.tracker.example"]
    replaced = client.put(f"{DNS}/policies/kids", json={"block_answer": "null-ip"})
    assert replaced.status_code == 200 and replaced.json()["deny"] == []
    names = [p["name"] for p in client.get(f"{DNS}/policies").json()]
    assert names == ["default", "kids"]
    with container.deps.sessions() as db:
        assert read_directory(db, "local").policies["kids"].block_answer == "null-ip"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"deny": ["not a name"]}, "deny"),
        ({"allow": ["*.*.x"]}, "allow"),
        ({"block_answer": "refuse"}, "block_answer"),
        ({"blocklists": ["ftp://lists.example/x"]}, "blocklists"),
        ({"blocklists": ["/etc/hosts"]}, "blocklists"),  # local lists: names in local-lists/
        ({"blocklists": ["../up.txt"]}, "blocklists"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_policies_are_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    response = client.put(f"{DNS}/policies/p1", json=body)
    assert response.status_code == 422 and field in fields(response), response.text
    assert client.put("/api/v1/dns/policies/Bad Name", json={}).status_code == 422


def test_blocklist_files_are_checked_and_the_last_good_copy_kept(
    client: TestClient, container: Container
) -> None:
    local = local_lists_dir(container.settings.data_dir)  # local lists are read from here only
    good = local / "list.txt"
    good.write_text("# a list\n0.0.0.0 ads.example\n||tracker.example^\njunk junk\n")
    response = client.put(f"{DNS}/policies/p1", json={"blocklists": ["list.txt"]})
    assert response.status_code == 201, response.text
    (status,) = response.json()["lists"]
    assert (status["entries"], status["junk"], status["error"]) == (2, 1, None)

    html = local / "page.txt"
    html.write_text("<!DOCTYPE html><html><body>login</body></html>\n")
    bad = client.put(f"{DNS}/policies/p2", json={"blocklists": ["page.txt"]})
    assert bad.status_code == 422 and "HTML" in bad.text and bad.json()["field"] == "blocklists"
    missing = client.put(f"{DNS}/policies/p2", json={"blocklists": ["no.txt"]})
    assert missing.status_code == 422

    good.write_text("<html>the source went bad</html>\n")
    (refreshed,) = client.post(f"{DNS}/blocklists/refresh", json={}).json()
    assert "HTML" in refreshed["error"] and refreshed["entries"] == 2 and refreshed["has_copy"]


def test_peer_policy_patch(client: TestClient, container: Container, peer: dict[str, Any]) -> None:
    url = f"/api/v1/peers/{peer['id']}"
    unknown = client.patch(url, json={"dns_policy": "kids"})
    assert unknown.status_code == 422 and "dns_policy" in unknown.text
    assert client.put(f"{DNS}/policies/kids", json={"anti_bypass": False}).status_code == 201
    assert client.patch(url, json={"dns_policy": "kids"}).json()["dns_policy"] == "kids"
    with container.deps.sessions() as db:
        assert read_directory(db, "local").clients[peer["address"].split("/")[0]].policy == "kids"
    # A policy with anti-bypass off exempts its peers from the DNS redirect.
    guard = container.reconciler.source().dns_guard
    assert guard is not None and guard.exempt == ("10.8.0.2",)
    assert client.delete(f"{DNS}/policies/kids").status_code == 409
    assert client.patch(url, json={"dns_policy": None}).json()["dns_policy"] is None
    assert client.delete(f"{DNS}/policies/kids").status_code == 204


def test_tenant_policy(client: TestClient, container: Container, peer: dict[str, Any]) -> None:
    assert client.put(f"{DNS}/policies/family", json={}).status_code == 201
    assert client.put(f"{DNS}/tenants/default", json={"policy": "family"}).status_code == 204
    with container.deps.sessions() as db:
        assert read_directory(db, "local").clients["10.8.0.2"].policy == "family"
    assert client.put(f"{DNS}/tenants/default", json={"policy": "nope"}).status_code == 422
    assert client.put(f"{DNS}/tenants/nope", json={"policy": None}).status_code == 404


def test_query_log_filters_and_stats(client: TestClient, container: Container) -> None:
    store = DnsStore(container.deps.sessions, "local")
    now = time.time()
    laptop = (1, "laptop", "10.8.0.2", "kids")  # peer id, peer, client, policy
    phone = (2, "phone", "10.8.0.3", "default")
    # (at, *who, name, qtype, status, reason, rcode, upstream, latency_ms, count)
    rows: list[tuple[object, ...]] = [
        (now, *laptop, "ads.example", 1, "blocked", "deny", 3, None, None, 1),
        (now, *laptop, "ads.example", 28, "blocked", "deny", 3, None, None, 1),
        (now, *laptop, "www.example", 1, "resolved", None, 0, "udp://x", 3.5, 1),
        # three identical cache hits within one flush: one row with a count
        (now, *phone, "www.example", 1, "cached", None, 0, None, None, 3),
        # no upstream answered: a failure, never an allowed name
        (now, *phone, "down.example", 1, "servfail", "no upstream", 2, None, None, 1),
        (now - 9 * 86400, *phone, "old.example", 1, "cached", None, 0, None, None, 1),
    ]
    store.write_log(rows)
    page = client.get(f"{DNS}/queries", params={"peer_id": 1}).json()
    assert page["total"] == 3 and page["items"][0]["peer"] == "laptop"
    blocked = client.get(f"{DNS}/queries", params={"status": "blocked", "name": "ADS"}).json()
    assert [i["qtype"] for i in blocked["items"]] == ["AAAA", "A"]
    assert blocked["items"][0]["rcode"] == "NXDOMAIN"
    stats = client.get(f"{DNS}/stats").json()
    assert stats["queries"] == 7 and stats["blocked"] == 2 and stats["blocked_share"] == 0.2857
    assert stats["by_status"] == {"blocked": 2, "resolved": 1, "cached": 3, "servfail": 1}
    assert stats["top_blocked"] == [{"name": "ads.example", "count": 2}]
    assert stats["top_allowed"] == [{"name": "www.example", "count": 4}]
    assert stats["top_failed"] == [{"name": "down.example", "count": 1}]
    assert {g["key"]: g["queries"] for g in stats["by_peer"]} == {"laptop": 3, "phone": 4}
    phone = client.get(f"{DNS}/queries", params={"peer_id": 2, "name": "www"}).json()["items"]
    assert phone[0]["count"] == 3
    by_policy = {g["key"]: g for g in stats["by_policy"]}
    assert by_policy["kids"]["blocked_share"] == pytest.approx(2 / 3, abs=1e-3)
    # Retention: entries older than the cut-off go, then all but the newest N.
    assert store.prune_log(now - 7 * 86400, 1_000_000) == 1
    assert store.prune_log(0, 2) == 3
    assert client.get(f"{DNS}/queries").json()["total"] == 2


def test_prune_keeps_newest_rows_across_id_gaps(client: TestClient, container: Container) -> None:
    """An age prune leaves gaps in the ids; the row cap must still keep exactly the
    newest N rows that exist, not the rows above max(id) - N."""
    store = DnsStore(container.deps.sessions, "local")
    now = time.time()
    who = (1, "laptop", "10.8.0.2", "default")
    rows: list[tuple[object, ...]] = []
    for i in range(6):  # old and recent rows alternate, so the age prune punches holes
        at = now - 9 * 86400 if i % 2 == 0 else now - 6 + i
        rows.append((at, *who, f"n{i}.example", 1, "resolved", None, 0, "udp://x", 1.0, 1))
    store.write_log(rows)
    assert store.prune_log(now - 7 * 86400, 2) == 4
    names = [i["name"] for i in client.get(f"{DNS}/queries").json()["items"]]
    assert sorted(names) == ["n3.example", "n5.example"]


class _ListHandler(BaseHTTPRequestHandler):
    body = b"||ads.example^\n"
    etag = '"v1"'
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.headers.get("If-None-Match") or "")
        if self.headers.get("If-None-Match") == self.etag:
            self.send_response(304)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("ETag", self.etag)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def list_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ListHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/list.txt"
    finally:
        server.shutdown()
        server.server_close()


def test_http_lists_use_etags_and_keep_the_last_copy(tmp_path: Path, list_server: str) -> None:
    store = ListStore(tmp_path, allow_private=True)  # the test's list server is on loopback
    first = store.fetch(list_server)
    assert first.entries == 1 and first.error is None and first.etag == '"v1"'
    second = store.fetch(list_server)
    assert second.error is None and _ListHandler.hits[-1] == '"v1"'  # a 304
    _ListHandler.etag, _ListHandler.body = '"v2"', b"<html><body>oops</body></html>\n"
    third = store.fetch(list_server)
    assert third.error and "HTML" in third.error and third.entries == 1
    compiled = store.load(list_server)
    assert compiled is not None and len(compiled.deny) == 1
    gone = store.fetch("http://127.0.0.1:9/list.txt")
    assert gone.error and "cannot fetch" in gone.error


def test_prometheus_counts_answers_by_policy_and_outcome(
    client: TestClient, container: Container
) -> None:
    runtime = container.dns_runtime
    assert runtime is not None  # built by bootstrap, not started (run_loop=False)
    runtime.resolver.counters.add("default", "blocked")
    runtime.resolver.counters.add("default", "blocked")
    text = client.get("/metrics").text
    assert 'wirewarden_dns_queries_total{policy="default",status="blocked"} 2.0' in text
    assert "wirewarden_dns_cache_entries 0.0" in text


def test_query_log_written_by_the_writer_process(client: TestClient, container: Container) -> None:
    """What the resolver hands its log writer process shows in the log and the stats, and
    the process prunes by age; counted cache hits keep their count."""
    now = time.time()
    question = b"\x03www\x07example\x00\x00\x1c\x00\x01"  # www.example AAAA IN, as on the wire
    counted: LogKey = ("10.8.0.2", "default", question, "cached", None, 0)
    batch = LogBatch(
        [
            (
                now - 1,
                1,
                "laptop",
                "10.8.0.2",
                "default",
                "ads.example",
                1,
                "blocked",
                "deny",
                3,
                None,
                None,
                1,
            ),
            (
                now - 9 * 86400,
                None,
                None,
                "10.8.0.9",
                "default",
                "old.example",
                1,
                "resolved",
                None,
                0,
                "udp://x",
                2.0,
                1,
            ),
        ],
        [({counted: 7}, {counted: (now, 1, "laptop")})],
    )
    url = container.settings.db_url

    async def hand_over() -> None:
        writer = ProcessLogWriter(partial(log_ports, url, "local"))
        assert await writer.submit(batch) == 0
        await writer.prune(now - 7 * 86400, 1_000_000)
        await writer.close()

    asyncio.run(hand_over())
    items = client.get(f"{DNS}/queries").json()["items"]
    assert [(i["name"], i["qtype"], i["status"], i["count"]) for i in items] == [
        ("www.example", "AAAA", "cached", 7),
        ("ads.example", "A", "blocked", 1),
    ]
    assert items[0]["peer"] == "laptop" and items[1]["rcode"] == "NXDOMAIN"
    stats = client.get(f"{DNS}/stats").json()
    assert stats["queries"] == 8 and stats["by_status"] == {"blocked": 1, "cached": 7}


def test_query_log_writer_process_comes_back(container: Container) -> None:
    """A writer process that died is replaced at the next batch; the log goes on (what
    the dead one had not written yet is lost)."""
    url = container.settings.db_url

    def batch(name: str) -> LogBatch:
        record = (time.time(), None, None, "10.8.0.9", "default", name, 1, "resolved")
        return LogBatch([(*record, None, 0, "udp://x", 1.0, 1)], [])

    async def hand_over() -> None:
        writer = ProcessLogWriter(partial(log_ports, url, "local"))
        await writer.submit(batch("killed.example"))
        assert writer.process is not None
        writer.process.kill()
        await asyncio.get_running_loop().run_in_executor(None, writer.process.join)
        await writer.submit(batch("lost-or-not.example"))  # may go to the dead pipe
        await asyncio.sleep(0.1)  # lets the transport see the broken pipe
        await writer.submit(batch("after.example"))
        await writer.close()

    asyncio.run(hand_over())
    with container.deps.sessions() as db:
        names = set(db.scalars(select(DnsQuery.name)))
    assert "after.example" in names


def test_a_directory_read_again_for_a_few_peers_equals_a_whole_read(
    client: TestClient, container: Container, peer: dict[str, Any]
) -> None:
    """A fleet node's resolver directory after a peers-only change: the earlier one with
    the changed peers' rows read again is what a whole read gives (gone, changed, new)."""
    assert client.put(f"{DNS}/policies/kids", json={}).status_code == 201
    made = [
        client.post("/api/v1/interfaces/wg0/peers", json={"name": f"p{i}"}).json() for i in range(3)
    ]
    with container.deps.sessions() as db:
        before = read_directory(db, "local")
    client.patch(f"/api/v1/peers/{made[0]['id']}", json={"dns_policy": "kids"})
    client.delete(f"/api/v1/peers/{made[1]['id']}")
    new = client.post("/api/v1/interfaces/wg0/peers", json={"name": "new"}).json()
    changed = frozenset({made[0]["id"], made[1]["id"], new["id"]})
    with container.deps.sessions() as db:
        whole = read_directory(db, "local")
        partial_read = read_directory(db, "local", before, changed)
    assert partial_read == whole
    assert whole.clients[made[0]["address"].split("/")[0]].policy == "kids"
    assert made[1]["address"].split("/")[0] not in whole.clients
    # Not told which peers changed, or a frame that moved (a new policy): read whole.
    assert client.put(f"{DNS}/policies/teens", json={}).status_code == 201
    with container.deps.sessions() as db:
        stale = read_directory(db, "local", before, frozenset())
        assert stale == read_directory(db, "local")
