"""HTTP entry point: the REST API (and later the dashboard)."""
