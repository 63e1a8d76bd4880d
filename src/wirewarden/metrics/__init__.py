"""Traffic metrics: the collector and the Prometheus exposition."""
