"""The fleet: how a node's agent and the control plane speak (docs/fleet.md)."""
