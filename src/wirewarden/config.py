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
    log_level: str = "info"

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
