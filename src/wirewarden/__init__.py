"""WireWarden: a self-hosted WireGuard VPN control plane."""

__version__ = "0.1.0"
