"""Showing traffic in the terminal: usage of one peer, the top peers."""

from __future__ import annotations

from rich.table import Table

from wirewarden.domain.traffic import human_bytes
from wirewarden.services.schemas import UsageOut
from wirewarden.services.traffic import TopPeers


def usage_view(name: str, usage: UsageOut) -> Table:
    view = Table.grid(padding=(0, 2))
    view.add_row("[bold]peer[/]", name)
    if usage.period_start and usage.period_end:
        period = f"{usage.period_start:%Y-%m-%d %H:%M} to {usage.period_end:%Y-%m-%d %H:%M}"
        view.add_row("[bold]period[/]", f"{period}, resets on day {usage.cap_reset_day}")
    view.add_row("[bold]download[/]", human_bytes(usage.tx_bytes))
    view.add_row("[bold]upload[/]", human_bytes(usage.rx_bytes))
    view.add_row("[bold]total[/]", human_bytes(usage.traffic_bytes))
    if usage.cap_bytes is None:
        view.add_row("[bold]cap[/]", "none")
    else:
        share = usage.used_bytes / usage.cap_bytes * 100 if usage.cap_bytes else 100.0
        state = f"[red]over the cap ({usage.cap_action})[/]" if usage.over else f"{share:.1f} %"
        view.add_row("[bold]cap[/]", f"{human_bytes(usage.cap_bytes)}: {state} used")
        left = max(usage.cap_bytes - usage.used_bytes, 0)
        view.add_row("[bold]remaining[/]", human_bytes(left))
    return view


def top_view(top: TopPeers) -> Table:
    title = f"Top peers {top.since:%Y-%m-%d %H:%M} to {top.until:%Y-%m-%d %H:%M} UTC"
    view = Table("#", "peer", "interface", "download", "upload", "total", title=title)
    for rank, peer in enumerate(top.items, start=1):
        view.add_row(
            str(rank),
            peer.name,
            peer.interface,
            human_bytes(peer.tx_bytes),
            human_bytes(peer.rx_bytes),
            human_bytes(peer.total_bytes),
        )
    if not top.items:
        view.add_row("-", "no traffic recorded in this range", "", "", "", "")
    return view
