#!/usr/bin/env bash
# Idempotent set-up on Debian/Ubuntu as root: system tools, the .venv, the package.
# Sourced by scripts/serve and scripts/test; a second run only checks and returns.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "wirewarden: run this as root (it installs packages and manages network interfaces)" >&2
        exit 1
    fi
}

apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # No recommends: plain wireguard-tools would pull a kernel image.
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

python_ok() {
    command -v python3 >/dev/null && python3 - <<'PY' 2>/dev/null
import sys, ensurepip, venv  # noqa: F401
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY
}

setup_python() {
    python_ok || apt_install python3 python3-venv python3-pip
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    local stamp="$VENV/.wirewarden-installed" hash have=""
    hash="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
    [ -f "$stamp" ] && have="$(cat "$stamp")"
    # A dev install holds everything a runtime install does.
    if [ "$have" != "$hash-$1" ] && [ "$have" != "$hash-dev" ]; then
        "$VENV/bin/pip" install -q --upgrade pip
        local extra=""
        [ "$1" = "dev" ] && extra="[dev]"
        "$VENV/bin/pip" install -q -e "$ROOT$extra"
        echo "$hash-$1" >"$stamp"
    fi
}

setup_assets() {
    # The dashboard's front-end libraries (htmx, uPlot, jsvectormap) from the npm registry, pinned by
    # package-lock.json and served by our own static route: never a CDN at run time.
    command -v npm >/dev/null || apt_install nodejs npm
    local stamp="$ROOT/node_modules/.wirewarden-lock" hash have=""
    hash="$(sha256sum "$ROOT/package-lock.json" | cut -d' ' -f1)"
    [ -f "$stamp" ] && have="$(cat "$stamp")"
    if [ "$have" != "$hash" ]; then
        (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
        echo "$hash" >"$stamp"
    fi
}

# unbound (with dns-root-data) is optional for serve: only WIREWARDEN_DNS_UPSTREAMS=unbound
# needs it (docs/dns.md), so it is not installed for everyone. Tests run a real one.
# postgresql likewise: serve uses it only when WIREWARDEN_DATABASE_URL names one (fleets,
# docs/database.md; the driver, psycopg, comes with the Python package). The tests start
# private PostgreSQL 15 clusters (tests/pg.py) to run the store and API suites on it too.
# iptables (the nf_tables one): the classifier's queue rule (docs/classify.md); gcc,
# python3-dev and libnetfilter-queue-dev: pip builds the queue reader's binding.
SERVE_PACKAGES=(wireguard-tools wireguard-go nftables iproute2 conntrack procps
    iptables gcc python3-dev libnetfilter-queue-dev)
# caddy: tests/netns/test_reach.py puts the dashboard behind it (packaging/caddy).
# The packaging tests: systemd for systemd-analyze verify of the units; podman (runc: this
# host's cgroups defeat crun) and mmdebstrap to build and run the image on a local base.
# postgresql: the store, API and security suites run on it too (a private cluster).
# libatomic1: Playwright's bundled node driver links it; Debian's chromium does not pull it
# (found by scripts/check-fresh-install).
# socat: bench/expose_bench.py compares the kernel forward with a userspace relay.
# wrk: bench/replicas.py loads the API of one and of two control-plane replicas.
# aria2, openssh-client, openssl: real clients whose first packets the classifier tests read.
TEST_PACKAGES=(iperf3 curl iputils-ping dnsutils chromium dnsperf unbound openresolv caddy
    systemd podman runc mmdebstrap postgresql libatomic1 socat wrk
    aria2 openssh-client openssl)
