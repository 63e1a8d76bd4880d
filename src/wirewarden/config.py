"""Settings from the environment (WIREWARDEN_*) and an optional TOML file; built in bootstrap."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from wirewarden.domain import addresses, urls, vhost


class SettingsError(ValueError):
    """Settings that parse but cannot work here (the message names the variable)."""


class StartupError(RuntimeError):
    """Start-up cannot go on (the message names the setting to look at): the CLI prints it
    and exits with status 1, without a traceback."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WIREWARDEN_", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str | None = None
    # ---- the connection pool of each process (store/db.py PoolOptions says why these)
    # Connections kept open, and how many more a burst may open.
    database_pool_size: int = Field(default=5, ge=1, le=100)
    database_max_overflow: int = Field(default=10, ge=0, le=100)
    # Seconds a request waits for a free connection before it is answered 503.
    database_pool_timeout: float = Field(default=10.0, gt=0)
    # Seconds after which a pooled connection is replaced.
    database_pool_recycle: float = Field(default=1800.0, gt=0)
    # Seconds one PostgreSQL connection attempt may take.
    database_connect_timeout: int = Field(default=5, ge=1)
    # Seconds the start waits for the database (retrying) before it gives up.
    database_wait: float = Field(default=10.0, ge=0)
    # Where the dashboard and API listen (host:port, [v6]:port); `serve --listen` overrides.
    http: str = "127.0.0.1:8000"
    wg_implementation: Literal["auto", "kernel", "wireguard-go"] = "auto"
    node_name: str = "local"
    # Interface masqueraded traffic leaves by; empty means the default route's interface.
    uplink: str | None = None
    # Host clients dial when an interface has no endpoint of its own.
    public_host: str | None = None

    @field_validator("public_host")
    @classmethod
    def _public_host(cls, value: str | None) -> str | None:
        # It is written into every client config: the same strict check as an endpoint.
        if value:
            addresses.endpoint(value)
        return value or None

    # Where an interface created without an address or port gets one: /24s of this IPv4
    # network, and the first free UDP port of this range.
    interface_pool: IPv4Network = IPv4Network("10.8.0.0/16")
    interface_ports: str = Field(default="51820-52819", pattern=r"^[0-9]{1,5}-[0-9]{1,5}$")
    # A tenant's interface: a /24 of this network, a port of this range (apart from the
    # interface ports: DESIGN's 51800-52800 would overlap them), and a /64 of the optional
    # ULA network.
    tenant_pool: IPv4Network = IPv4Network("10.88.0.0/16")
    tenant_ports: str = Field(default="52820-53819", pattern=r"^[0-9]{1,5}-[0-9]{1,5}$")
    tenant_pool6: IPv6Network | None = None

    @field_validator("http")
    @classmethod
    def _http(cls, value: str) -> str:
        addresses.endpoint(value, port_required=True)
        return value

    # ---- reaching the dashboard from another machine (README "On a VPS")
    # The address people and agents open the dashboard at: share links and everything else
    # that prints a URL use it. Unset: made from the listen address (or, listening on every
    # address, public_host or this host's outbound address) and whether serve speaks TLS.
    public_url: str | None = None

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        return urls.public_url(value) if value else None

    # A certificate and its key (PEM files) for HTTPS; both or neither.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Listening beyond loopback without tls_cert: make a self-signed certificate on the first
    # start (kept in the data dir). false: plain HTTP there too (a proxy on a private network).
    tls_self_signed: bool = True
    # Strict-Transport-Security on HTTPS answers. Unset: on when tls_cert is set (a real
    # certificate), off otherwise (a browser could never click through a self-signed one).
    hsts: bool | None = None
    # Reverse proxies whose X-Forwarded-For/-Proto/-Host are believed (comma separated
    # addresses or CIDRs). Empty: none, so no client can forge its source address.
    trusted_proxies: str = ""

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: str) -> str:
        for item in split_list(value):
            try:
                addresses.network(item, strict=False)
            except addresses.AddressError:
                raise ValueError(f"{item!r} is not an IP address or CIDR") from None
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> Self:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("WIREWARDEN_TLS_CERT and WIREWARDEN_TLS_KEY go together")
        return self

    reconcile_period: float = Field(default=10.0, gt=0)
    master_key: str | None = None
    # The server's LAN networks (comma separated) for intranet-only / internet-only;
    # unset: the networks of this host's private addresses outside the VPN and uplink.
    lan_networks: str | None = None
    # What happens to a peer over its data cap: blocked, or throttled to cap_throttle_kbit.
    cap_action: Literal["block", "throttle"] = "block"
    cap_throttle_kbit: int = Field(default=1000, gt=0)
    # Time zone of the monthly cap reset (IANA name); unset: the host's.
    timezone: str | None = None
    # Leaf qdisc inside a speed-limit class (a plain FIFO where the kernel lacks it).
    tc_leaf: str = "fq_codel flows 64"
    # Seconds between traffic collections (one `wg show all dump` each).
    metrics_period: float = Field(default=10.0, gt=0)
    # Who may read /metrics: "loopback" lets local clients in without a token (anyone else
    # needs one); "token" always asks for a bearer token (an API token with the read scope,
    # or metrics_token).
    metrics_access: Literal["loopback", "token"] = "loopback"
    metrics_token: str | None = None
    log_level: str = "info"
    # A node_modules holding the dashboard's libraries; empty: those inside the package (a
    # wheel), else the checkout's node_modules (a dev install).
    assets_dir: Path | None = None
    # DNS filtering resolver on every interface gateway (see docs/dns.md).
    dns_enabled: bool = True
    # Comma separated udp://host[:port], tls://host[:port][#name] and `unbound` (or
    # unbound://127.0.0.1:5335: a local Unbound serve starts); empty: the nameservers of
    # /etc/resolv.conf, as plain DNS.
    dns_upstreams: str = ""
    # The local Unbound validates DNSSEC when a root trust anchor is at hand.
    dns_unbound_dnssec: bool = True
    # Its root hints; unset: dns-root-data's /usr/share/dns/root.hints when present,
    # else the addresses built into Unbound.
    dns_unbound_root_hints: Path | None = None
    dns_port: int = Field(default=53, ge=1, le=65535)
    # Expose: the tunnel API's TCP port on every gateway address, and the public addresses
    # published ports are reached at (comma separated; empty: the uplink's).
    tunnel_api_port: int = Field(default=7070, ge=1, le=65535)
    expose_listen: str = ""
    # HTTP services by name: published under this domain (a wildcard DNS record of it
    # points at the server); empty: no names. The front listener's HTTP and HTTPS (SNI
    # passthrough) ports on the expose_listen addresses (all when empty), or `off`.
    expose_domain: str = ""
    expose_http: str = Field(default="80,443", pattern=r"^(off|[0-9]{1,5},[0-9]{1,5})$")

    @field_validator("expose_domain")
    @classmethod
    def _expose_domain(cls, value: str) -> str:
        if value:
            vhost.zone("x", value)  # a host name, or the error that says why not
        return value.strip().lower().rstrip(".")

    @field_validator("expose_http")
    @classmethod
    def _expose_http(cls, value: str) -> str:
        ports = [] if value == "off" else [int(p) for p in value.split(",")]
        if any(not 1 <= p <= 65535 for p in ports) or len(set(ports)) != len(ports):
            raise ValueError("two different ports in 1-65535 (HTTP,HTTPS), or off")
        return value

    def name_zone(self) -> vhost.NameZone | None:
        """Where names are published; None when they are not (no domain, front off)."""
        if not self.expose_domain or self.expose_http == "off":
            return None
        http, https = (int(p) for p in self.expose_http.split(","))
        return vhost.NameZone(self.expose_domain, http, https)

    # Traffic classification (docs/classify.md): `auto` runs it while some peer blocks a
    # class, `on` always, `off` never; the NFQUEUE number its queue rule uses.
    classify: Literal["auto", "on", "off"] = "auto"
    classify_queue: int = Field(default=4077, ge=0, le=65535)
    # Keep the server names classified flows carry (TLS/QUIC SNI, HTTP Host), per peer,
    # for as long as the DNS query log; off by default (docs/classify.md, "Privacy").
    classify_names: bool = False
    # Addresses to answer on besides the gateways (e.g. 127.0.0.1), comma separated.
    dns_listen: str = ""
    dns_refresh_hours: float = Field(default=24.0, gt=0)
    # Blocklist URLs may name loopback, link-local or this host's own addresses (a list
    # server on the gateway itself); off, such a fetch is refused before it connects.
    dns_lists_allow_private: bool = False
    # A fetched or local blocklist larger than this is refused (counted while streaming).
    dns_list_max_mb: int = Field(default=128, ge=1, le=4096)
    dns_log_retention_days: float = Field(default=7.0, gt=0)
    dns_log_max_rows: int = Field(default=1_000_000, ge=1000)
    dns_serve_stale_seconds: int = Field(default=3600, ge=0)
    dns_cache_entries: int = Field(default=100_000, ge=100)
    # ---- accounts and security (issue 4)
    # The first admin's password on the first start; without it one is generated and printed.
    admin_password: str | None = None
    # Every admin must enrol TOTP before reaching anything.
    totp_required_for_admins: bool = False
    session_idle_minutes: int = Field(default=120, gt=0)
    session_max_hours: int = Field(default=24, gt=0)
    # Trust X-Forwarded-Proto: https from the reverse proxy in front (marks cookies Secure).
    trust_forwarded_proto: bool = False
    password_min_length: int = Field(default=10, ge=8)
    # Failed logins per account name, and per source address, before a temporary lockout.
    login_max_failures: int = Field(default=5, gt=0)
    login_max_failures_per_source: int = Field(default=20, gt=0)
    login_window_minutes: int = Field(default=15, gt=0)
    login_lockout_minutes: int = Field(default=15, gt=0)
    share_link_hours: int = Field(default=24, gt=0)
    # Argon2 checks running at once (each holds argon2_memory_kib and argon2_parallelism
    # lanes); more wait their turn a few seconds, then get 503: a flood of sign-ins cannot
    # take the memory.
    password_hash_concurrency: int = Field(default=2, gt=0)
    # Argon2id's cost: RFC 9106's second option (3 passes over 64 MiB), one lane per core of
    # a small VPS. Hashes carry their parameters: a change upgrades each stored hash at its
    # user's next sign-in. Tests lower them (tests/api/conftest.py) to run fast.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=64 * 1024, ge=8)
    argon2_parallelism: int = Field(default=2, ge=1, le=64)
    # ---- request bodies (web/bodygate.py): every body is counted as it streams in
    # The largest request body accepted (413 above it), API and forms alike.
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    # Fields one posted form may have (a page of the peer table ticked, with room to spare);
    # no form takes files.
    max_form_fields: int = Field(default=500, gt=0)
    # Members may own this many peers unless their account says otherwise.
    default_device_limit: int = Field(default=5, ge=0)
    # ---- `wirewarden agent` (a fleet node; docs/agent.md)
    # The control plane's URL (https; http to a loopback address only).
    agent_server: str | None = None
    # The one-time join token `wirewarden node add` printed (used at the first start only).
    agent_join_token: str | None = None
    # A PEM bundle of the CA(s) that sign the control plane's certificate (else the system's).
    agent_ca_file: Path | None = None
    # Hours of report batches (traffic, query log, quotas) kept while the control plane is away.
    agent_buffer_hours: float = Field(default=24.0, gt=0)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'wirewarden.db').resolve()}"

    @property
    def http_on_loopback(self) -> bool:
        """`serve` listens on a loopback address only (nobody else can connect)."""
        host = self.host_port[0]
        if host == "localhost":
            return True
        try:
            return addresses.ip(host).is_loopback
        except addresses.AddressError:
            return False  # a host name: it may resolve to any address

    @property
    def master_key_path(self) -> Path:
        return self.data_dir / "master.key"

    @property
    def host_port(self) -> tuple[str, int]:
        host, port = addresses.endpoint(self.http, port_required=True)
        assert port is not None
        return host, port

    @property
    def proxies(self) -> list[str]:
        return split_list(self.trusted_proxies)


def split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def load_settings(toml_path: Path | None = None, **overrides: Any) -> Settings:
    """Command-line options win over the environment, which wins over the TOML file,
    which wins over the defaults."""
    if toml_path is None or not toml_path.exists():
        return Settings(**overrides) if overrides else Settings()
    import tomllib

    with toml_path.open("rb") as handle:
        values = tomllib.load(handle)
    env_set = Settings()
    merged = {**values, **env_set.model_dump(exclude_unset=True), **overrides}
    return Settings(**merged)
