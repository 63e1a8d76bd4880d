"""`wirewarden mapping`: an admin lists what the peers publish, with traffic, and removes
one (audited; the kernel's forward goes with it)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from wirewarden.cli import main as cli
from wirewarden.cli.main import app
from wirewarden.cli.mappings import mapping_app
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.domain.firewall import ExposeCount, KernelCounts
from wirewarden.services.mappings import Origin
from wirewarden.services.schemas import InterfaceCreate, MappingIn, PeerCreate, PeerUpdate


def run(*args: str) -> tuple[int, str]:
    if not any(group.name == "mapping" for group in app.registered_groups):
        app.add_typer(mapping_app, name="mapping")  # as main() does
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_mapping_list_and_rm(cli_env: FakeDataplane) -> None:
    with cli.container() as c:
        c.interfaces.create(InterfaceCreate(name="wg0", address="10.8.0.1/24"), cli.CLI)
        peer = c.peers.create("wg0", PeerCreate(name="nas"), cli.CLI)
        c.peers.update(peer.id, PeerUpdate(expose_ports="25565"), cli.CLI)
        address = peer.address.split("/")[0]
        made = c.mappings.register(
            Origin("10.8.0.1", address, c.mappings.deps.node),
            MappingIn(proto="udp", remote_port=25565, local_port=40000),
        )
    cli_env.kernel_counts = KernelCounts(exposed=(ExposeCount("udp", address, 40000, 3, 900),))
    code, out = run("mapping", "list", "--json")
    assert code == 0, out
    listed = json.loads(out)
    assert [(m["peer"], m["proto"], m["remote_port"], m["bytes"]) for m in listed] == [
        ("nas", "udp", 25565, 900)
    ]
    code, out = run("mapping", "list")
    assert code == 0 and "Mappings" in out and "25565" in out
    code, out = run("mapping", "rm", str(made.id))
    assert code == 0 and "udp/25565 of nas" in out, out
    assert json.loads(run("mapping", "list", "--json")[1]) == []
    code, out = run("mapping", "rm", str(made.id))
    assert code == 1 and "not found" in out
