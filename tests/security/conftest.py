"""Security tests: the attacker's requests against the API tests' app (their fixtures,
imported rather than copied), in-process or through a real uvicorn on loopback."""

from __future__ import annotations

from tests.api.conftest import (  # noqa: F401 - fixtures, found by pytest by name
    PASSWORD,
    anon,
    app,
    browser,
    client,
    client_of,
    container,
    dataplane,
    make_user,
    serve,
    token,
)


def rss_bytes() -> int:
    """This process's resident memory now (the app runs in it)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")
