"""Backup/restore round trips and wg-quick import, through the services on a real SQLite file."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tests.api.conftest import build_fast
from wirewarden.bootstrap import Container, build
from wirewarden.config import Settings
from wirewarden.dataplane.fake import FakeDataplane, FakeDevice
from wirewarden.domain.keys import generate_keypair
from wirewarden.domain.state import PeerState
from wirewarden.services import backup as backups
from wirewarden.services.context import SYSTEM
from wirewarden.services.errors import Conflict, Invalid
from wirewarden.services.importer import Importer
from wirewarden.services.schemas import InterfaceCreate, PeerCreate
from wirewarden.store.tables import Base


def test_migrations_match_the_tables(container: Container) -> None:
    with container.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diffs == []


def test_database_and_key_files_are_private(tmp_path: Path) -> None:
    # A data dir of its own: the fixtures' database file is a copy made by the test.
    built = build_fast(Settings(data_dir=tmp_path / "fresh"), dataplane=FakeDataplane())
    built.engine.dispose()
    data = built.settings.data_dir
    assert (data / "wirewarden.db").stat().st_mode & 0o777 == 0o600
    assert (data / "master.key").stat().st_mode & 0o777 == 0o600


@pytest.mark.sqlite_only("backup and restore copy the SQLite file; PostgreSQL has pg_dump")
def test_backup_then_restore_into_a_new_data_dir(container: Container, tmp_path: Path) -> None:
    container.interfaces.create(InterfaceCreate(name="wg0", address="10.8.0.1/24"), SYSTEM)
    peer = container.peers.create("wg0", PeerCreate(name="laptop"), SYSTEM)
    config_before, _ = container.peers.config(peer.id)
    archive = tmp_path / "backup.tar.gz"
    settings = container.settings
    backups.backup(settings.db_url, settings.master_key_path, archive)
    assert archive.stat().st_mode & 0o777 == 0o600

    other = Settings(data_dir=tmp_path / "restored", public_host="vpn.example.test")
    backups.restore(other.db_url, other.master_key_path, archive)
    restored = build(other, dataplane=FakeDataplane(), stats_max_age=0)
    try:
        # The private keys open with the restored master key: the same config comes out.
        assert restored.peers.config(peer.id)[0] == config_before
    finally:
        restored.engine.dispose()


@pytest.mark.sqlite_only("backup and restore copy the SQLite file; PostgreSQL has pg_dump")
def test_restore_refuses_a_newer_schema(container: Container, tmp_path: Path) -> None:
    archive = tmp_path / "backup.tar.gz"
    settings = container.settings
    backups.backup(settings.db_url, settings.master_key_path, archive)
    doctored = tmp_path / "newer.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(doctored, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member)
            assert data is not None
            if member.name == "manifest.json":
                manifest = json.loads(data.read())
                manifest["schema"] = "9999"
                raw = json.dumps(manifest).encode()
                member.size = len(raw)
                dst.addfile(member, io.BytesIO(raw))
            else:
                dst.addfile(member, data)
    target = Settings(data_dir=tmp_path / "t")
    with pytest.raises(Conflict, match="newer"):
        backups.restore(target.db_url, target.master_key_path, doctored)
    assert not (tmp_path / "t" / "wirewarden.db").exists()


SERVER = """\
# managed by hand
[Interface]
Address = 10.9.0.1/24, fd00:9::1/64
ListenPort = 51999
PrivateKey = {server}
PostUp = iptables -A FORWARD -i %i -j ACCEPT

# Name = alice
[Peer]
PublicKey = {alice}
PresharedKey = {psk}
AllowedIPs = 10.9.0.2/32, fd00:9::2/128, 192.168.50.0/24

[Peer]
PublicKey = {bob}
AllowedIPs = 10.9.0.3/32
"""


def test_backup_on_postgresql_points_to_pg_dump(container: Container, tmp_path: Path) -> None:
    settings = container.settings
    if settings.database_url is None:
        pytest.skip("PostgreSQL only: on SQLite the backup is taken (tests above)")
    with pytest.raises(Invalid, match="pg_dump"):
        backups.backup(settings.db_url, settings.master_key_path, tmp_path / "b.tar.gz")


def test_import_adopts_interface_key_and_peers(
    container: Container, dataplane: FakeDataplane
) -> None:
    server, alice, bob, psk = (generate_keypair() for _ in range(4))
    text = SERVER.format(
        server=server.private_key, alice=alice.public_key, bob=bob.public_key, psk=psk.private_key
    )
    result = Importer(container.interfaces, container.peers).run("wg9", text, "vpn.test", SYSTEM)
    assert result.peers == 2
    assert any("PostUp" in w for w in result.warnings)
    iface = container.interfaces.get("wg9")
    assert (iface.public_key, iface.listen_port) == (server.public_key, 51999)
    assert dataplane.devices["wg9"].private_key == server.private_key
    peers = {p.name: p for p in container.peers.list("wg9").items}
    assert peers["alice"].address == "10.9.0.2/32, fd00:9::2/128"
    assert peers["alice"].routed_ips == "192.168.50.0/24"
    assert not peers["alice"].has_private_key
    kernel = dataplane.devices["wg9"].peers[alice.public_key]
    assert kernel.preshared_key == psk.private_key
    assert set(kernel.allowed_ips) == {"10.9.0.2/32", "fd00:9::2/128", "192.168.50.0/24"}
    with pytest.raises(Conflict, match="private key"):
        container.peers.config(peers["peer2"].id)


def test_import_of_a_broken_file_names_the_line_and_writes_nothing(container: Container) -> None:
    text = "[Interface]\nPrivateKey = nope\n"
    with pytest.raises(Invalid, match="line 2"):
        Importer(container.interfaces, container.peers).run("wg9", text, None, SYSTEM)
    assert container.interfaces.list().total == 0


def test_import_that_fails_midway_leaves_the_running_tunnel_alone(
    container: Container, dataplane: FakeDataplane
) -> None:
    """Two peers with one address: the second is refused; the live device keeps its peers."""
    server, alice, bob = generate_keypair(), generate_keypair(), generate_keypair()
    text = (
        f"[Interface]\nPrivateKey = {server.private_key}\nAddress = 10.9.0.1/24\n"
        f"ListenPort = 51999\n\n[Peer]\nPublicKey = {alice.public_key}\n"
        f"AllowedIPs = 10.9.0.2/32\n\n[Peer]\nPublicKey = {bob.public_key}\n"
        "AllowedIPs = 10.9.0.2/32\n"
    )
    running = dataplane.devices.setdefault("wg9", FakeDevice(up=True))
    running.peers[alice.public_key] = PeerState(alice.public_key, ("10.9.0.2/32",))
    with pytest.raises(Conflict, match="taken"):
        Importer(container.interfaces, container.peers).run("wg9", text, None, SYSTEM)
    assert container.interfaces.list().total == 0
    assert dataplane.devices["wg9"].up
    assert alice.public_key in dataplane.devices["wg9"].peers
