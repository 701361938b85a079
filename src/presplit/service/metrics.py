"""Prometheus metrics at ``/metrics`` (prometheus_client, a registry per service).

Gauges are read off the latest snapshot when Prometheus scrapes (a custom
collector), so a merged domain or a switched-off host never leaves a stale
series behind; counters and histograms are updated by the control loop's
thread as plans finish and ticks end.

| name | type | labels |
|---|---|---|
| ``presplit_host_cpu_utilisation`` | gauge | host, rack |
| ``presplit_host_cpu_forecast_utilisation`` | gauge | host, rack, quantile (0.05, 0.5, 0.95) |
| ``presplit_host_mem_reserved_ratio`` | gauge | host, rack |
| ``presplit_host_on`` | gauge | host, rack |
| ``presplit_domain_cpu_utilisation`` | gauge | host, domain |
| ``presplit_domain_cpu_forecast_utilisation`` | gauge | host, domain, quantile |
| ``presplit_domain_capacity_mips`` | gauge | host, domain |
| ``presplit_guests`` | gauge | status |
| ``presplit_sim_time_seconds`` | gauge | |
| ``presplit_actions_total`` | counter | kind, outcome |
| ``presplit_migrations_total`` | counter | kind (live, repin), outcome |
| ``presplit_plans_total`` | counter | status |
| ``presplit_plan_duration_seconds`` | histogram | status (wall time of the applier's run) |
| ``presplit_plan_simulated_duration_seconds`` | histogram | status |
| ``presplit_forecast_abs_error_ratio`` | histogram | level (domain, host): abs(load - p50 forecast) / capacity |
| ``presplit_forecast_interval_coverage_ratio`` | gauge | level: share of loads at or under the p95 forecast |
| ``presplit_control_loop_duration_seconds`` | histogram | (a tick's own work: observe, forecast, plan, journal) |
| ``presplit_ticks_total`` | counter | |
| ``presplit_tick_failures_total`` | counter | |
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily

disable_created_metrics()  # no *_created series: they double the scrape for nothing a dashboard uses

OUTCOMES = ("succeeded", "failed", "reverted", "revert_failed", "skipped", "cancelled")
MIGRATION_KINDS = {"MigrateGuest": "live", "MoveGuest": "repin"}
_QUANTILES = (("0.05", "p05"), ("0.5", "p50"), ("0.95", "p95"))


class Metrics:
    def __init__(self, snapshot_of=lambda: None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.actions = Counter("presplit_actions", "Actions finished, by kind and outcome.", ["kind", "outcome"],
                               registry=r)
        self.migrations = Counter("presplit_migrations", "Guest moves finished: live migrations and re-pins.",
                                  ["kind", "outcome"], registry=r)
        self.plans = Counter("presplit_plans", "Plans finished (or recommended), by status.", ["status"], registry=r)
        self.plan_duration = Histogram("presplit_plan_duration_seconds", "Wall time to apply a plan.", ["status"],
                                       buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
                                       registry=r)
        self.plan_sim_duration = Histogram("presplit_plan_simulated_duration_seconds",
                                           "Simulated (world) time a plan took.", ["status"],
                                           buckets=(0, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600), registry=r)
        self.forecast_error = Histogram("presplit_forecast_abs_error_ratio",
                                        "abs(load - the p50 forecast made one tick earlier) / capacity.", ["level"],
                                        buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0), registry=r)
        self.coverage = Gauge("presplit_forecast_interval_coverage_ratio",
                              "Share of loads at or under the p95 forecast made one tick earlier (last tick).",
                              ["level"], registry=r)
        self.loop_duration = Histogram("presplit_control_loop_duration_seconds",
                                       "A tick's own work (observe, forecast, plan, journal), without applying.",
                                       buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
                                       registry=r)
        self.ticks = Counter("presplit_ticks", "Control ticks run.", registry=r)
        self.tick_failures = Counter("presplit_tick_failures", "Control ticks that raised (journaled; the loop "
                                     "went on).", registry=r)
        for kind in MIGRATION_KINDS.values():
            for outcome in ("succeeded", "failed"):
                self.migrations.labels(kind, outcome)
        r.register(_SnapshotCollector(snapshot_of))

    def action_finished(self, kind: str, outcome: str) -> None:
        self.actions.labels(kind, outcome).inc()
        if kind in MIGRATION_KINDS:
            self.migrations.labels(MIGRATION_KINDS[kind], outcome).inc()

    def forecast_scored(self, level: str, errors, covered) -> None:
        for e in errors:
            self.forecast_error.labels(level).observe(float(e))
        if len(covered):
            self.coverage.labels(level).set(sum(covered) / len(covered))


class _SnapshotCollector:
    def __init__(self, snapshot_of) -> None:
        self.snapshot_of = snapshot_of

    def describe(self):
        return []

    def collect(self):
        snap = self.snapshot_of()
        hu = GaugeMetricFamily("presplit_host_cpu_utilisation", "CPU demand / host CPU.", labels=["host", "rack"])
        hf = GaugeMetricFamily("presplit_host_cpu_forecast_utilisation",
                               "Forecast CPU demand for the next tick / host CPU.", labels=["host", "rack", "quantile"])
        hm = GaugeMetricFamily("presplit_host_mem_reserved_ratio", "Reserved memory / host memory.",
                               labels=["host", "rack"])
        hon = GaugeMetricFamily("presplit_host_on", "1 when the host is powered.", labels=["host", "rack"])
        du = GaugeMetricFamily("presplit_domain_cpu_utilisation", "CPU demand / domain capacity.",
                               labels=["host", "domain"])
        df = GaugeMetricFamily("presplit_domain_cpu_forecast_utilisation",
                               "Forecast CPU demand for the next tick / domain capacity.",
                               labels=["host", "domain", "quantile"])
        dc = GaugeMetricFamily("presplit_domain_capacity_mips", "What guests may reserve in the domain.",
                               labels=["host", "domain"])
        gs = GaugeMetricFamily("presplit_guests", "Guests by status.", labels=["status"])
        now = GaugeMetricFamily("presplit_sim_time_seconds", "The world's time (simulated seconds).")
        unplaced = GaugeMetricFamily("presplit_guests_unplaced",
                                     "Guests still pending after the last tick's plan: the policy could not place them.")
        if snap is not None:
            unplaced.add_metric([], snap.status.counts.get("guests_unplaced", 0))
            for h in snap.hosts:
                lab = [h.name, h.rack]
                hu.add_metric(lab, h.utilisation)
                hm.add_metric(lab, h.mem_reserved_mb / h.mem_mb if h.mem_mb else 0.0)
                hon.add_metric(lab, 1.0 if h.on else 0.0)
                for q, attr in _QUANTILES:
                    hf.add_metric([*lab, q], getattr(h.forecast_utilisation, attr))
            names = {h.id: h.name for h in snap.hosts}
            for d in snap.domains:
                lab = [names.get(d.host, str(d.host)), str(d.id)]
                du.add_metric(lab, d.utilisation)
                dc.add_metric(lab, d.capacity_mips)
                for q, attr in _QUANTILES:
                    df.add_metric([*lab, q], getattr(d.forecast_utilisation, attr))
            counts: dict[str, int] = {}
            for g in snap.guests:
                counts[g.status] = counts.get(g.status, 0) + 1
            for st, n in sorted(counts.items()):
                gs.add_metric([st], n)
            if snap.status.now is not None:
                now.add_metric([], snap.status.now)
        yield from (hu, hf, hm, hon, du, df, dc, gs, now, unplaced)
