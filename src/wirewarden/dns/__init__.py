"""The DNS filtering resolver: listeners, fast path, cache, upstreams, blocklists."""
