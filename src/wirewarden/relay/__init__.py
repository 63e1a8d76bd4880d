"""The peer's side of expose: find the tunnel, relay to the local service, keep the lease."""
