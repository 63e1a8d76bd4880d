"""Settings from the environment (WIREWARDEN_*) and an optional TOML file; built in bootstrap."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WIREWARDEN_", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str | None = None
    http: str = "127.0.0.1:8000"
    wg_implementation: Literal["auto", "kernel", "wireguard-go"] = "auto"
    node_name: str = "local"
    # Interface masqueraded traffic leaves by; empty means the default route's interface.
    uplink: str | None = None
    # Host clients dial when an interface has no endpoint of its own.
    public_host: str | None = None
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
    log_level: str = "info"
    # Where `npm ci` installed the dashboard's libraries; empty: the checkout's node_modules.
    assets_dir: Path | None = None

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'wirewarden.db').resolve()}"

    @property
    def master_key_path(self) -> Path:
        return self.data_dir / "master.key"

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.http.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)


def load_settings(toml_path: Path | None = None) -> Settings:
    """Environment wins over the TOML file, which wins over the defaults."""
    if toml_path is None or not toml_path.exists():
        return Settings()
    import tomllib

    with toml_path.open("rb") as handle:
        values = tomllib.load(handle)
    env_set = Settings()
    merged = {**values, **env_set.model_dump(exclude_unset=True)}
    return Settings(**merged)
