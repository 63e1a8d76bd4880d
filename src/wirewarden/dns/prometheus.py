"""The resolver's figures for Prometheus, read from its counters at scrape time."""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from wirewarden.dns.runtime import DnsRuntime


class DnsExporter(Collector):
    def __init__(self, runtime: DnsRuntime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterable[Metric]:
        resolver = self.runtime.resolver
        answers = CounterMetricFamily(
            "wirewarden_dns_queries",
            "DNS queries answered, by policy and outcome (resolved, cached, blocked, stale, "
            "servfail, refused)",
            labels=["policy", "status"],
        )
        for (policy, status), count in sorted(resolver.counters.by.items()):
            answers.add_metric([policy, status], count)
        cache = GaugeMetricFamily("wirewarden_dns_cache_entries", "Answers in the DNS cache")
        cache.add_metric([], len(self.runtime.cache))
        hits = CounterMetricFamily("wirewarden_dns_cache_hits", "DNS cache hits")
        hits.add_metric([], self.runtime.cache.hits)
        dropped = CounterMetricFamily(
            "wirewarden_dns_log_dropped", "Query log records dropped (the writer fell behind)"
        )
        dropped.add_metric([], self.runtime.log.dropped)
        healthy = GaugeMetricFamily(
            "wirewarden_dns_upstream_healthy", "1 while the upstream is in use", labels=["upstream"]
        )
        ok = CounterMetricFamily(
            "wirewarden_dns_upstream_answers", "Upstream answers", labels=["upstream"]
        )
        failed = CounterMetricFamily(
            "wirewarden_dns_upstream_failures", "Upstream failures", labels=["upstream"]
        )
        now = time.monotonic()
        for upstream in resolver.upstreams.upstreams:
            healthy.add_metric([upstream.label], 1 if upstream.healthy(now) else 0)
            ok.add_metric([upstream.label], upstream.answered)
            failed.add_metric([upstream.label], upstream.failed)
        lists = GaugeMetricFamily(
            "wirewarden_dns_blocklist_entries",
            "Entries of each loaded blocklist",
            labels=["source"],
        )
        for source, (_, compiled) in sorted(self.runtime.compiled.items()):
            lists.add_metric([source], len(compiled.deny))
        yield from (answers, cache, hits, dropped, healthy, ok, failed, lists)
