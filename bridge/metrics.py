"""Prometheus metrics of one register, for a chain watching thousands of them.

One `CollectorRegistry` per service (no process-global registry): tests can run
several services side by side.  Request metrics are observed by the loyalty client;
journal, device and connectivity gauges are read at scrape time, so they are never
stale.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from bridge.loyalty.journal import JournalError

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from bridge.passthrough.manager import PassthroughManager
    from bridge.service.register import Register

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "posbridge_processing_requests",
            "Requests sent to processing",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "posbridge_processing_request_seconds",
            "Time for processing to answer",
            ["operation"],
            buckets=_BUCKETS,
            registry=self.registry,
        )

    def observe(self, operation: str, outcome: str, seconds: float) -> None:
        self.requests.labels(operation, outcome).inc()
        self.latency.labels(operation).observe(seconds)

    def watch(self, register: Register) -> None:
        self.registry.register(_RegisterCollector(register))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _RegisterCollector(Collector):
    def __init__(self, register: Register) -> None:
        self.register = register

    def collect(self) -> Iterator[Metric]:
        health = self.register.offline.journal_health()
        yield GaugeMetricFamily(
            "posbridge_journal_degraded",
            "1 while the offline journal cannot be written (disk full,"
            " read-only, I/O error): loyalty steps are refused",
            value=1.0 if health["degraded"] else 0.0,
        )
        yield GaugeMetricFamily(
            "posbridge_journal_damaged_alarm",
            "1 until a technician acknowledges a damaged journal moved aside",
            value=1.0 if health["alarm"] else 0.0,
        )
        try:
            counts = self.register.offline.journal.counts()
        except JournalError:  # unreadable: the degraded gauge says so
            counts = None
        if counts is not None:
            journal = GaugeMetricFamily(
                "posbridge_journal_entries", "Offline journal entries", labels=["status"]
            )
            for status, n in (
                ("pending", counts.pending),
                ("rejected", counts.rejected),
                ("done", counts.done),
            ):
                journal.add_metric([status], n)
            yield journal
            age = counts.oldest_pending_age()
            yield GaugeMetricFamily(
                "posbridge_journal_oldest_pending_seconds",
                "Age of the oldest request waiting to be sent",
                value=0.0 if age is None else age,
            )
        state = self.register.offline.state.value
        conn = GaugeMetricFamily(
            "posbridge_connectivity", "1 for the current state", labels=["state"]
        )
        for s in ("online", "offline", "recovering"):
            conn.add_metric([s], 1.0 if s == state else 0.0)
        yield conn
        # answers of processing off the contract, read tolerantly (bridge/loyalty/drift.py)
        drift = CounterMetricFamily(
            "posbridge_processing_answer_drift",
            "Answer fields of processing that deviated from the contract and were read tolerantly",
            labels=["operation", "field", "kind"],
        )
        drifted = self.register.offline.client.drift.counts()
        for (operation, field, kind), n in sorted(drifted.items()):
            drift.add_metric([operation, field, kind], n)
        yield drift
        devices = GaugeMetricFamily(
            "posbridge_device_online",
            "1 if the device is online",
            labels=["device", "kind", "power"],
        )
        for d in self.register.status()["devices"]:
            devices.add_metric(
                [d["name"], d["kind"], d["power"]], 1.0 if d["power"] == "online" else 0.0
            )
        yield devices
        passthrough = getattr(self.register, "passthrough", None)
        if passthrough is not None:
            yield from _passthrough_metrics(passthrough)


def _passthrough_metrics(manager: PassthroughManager) -> Iterator[Metric]:
    """Receipts settled through the pass-through, items that did not match the pushed
    catalogue (a shop's catalogue to fix), and each relay's own counters."""
    counts = manager.session.counts
    items = CounterMetricFamily(
        "posbridge_passthrough_items",
        "Fiscal items sent to processing, by whether they matched the pushed catalogue",
        labels=["match"],
    )
    items.add_metric(["matched"], counts.items - counts.unmatched)
    items.add_metric(["unmatched"], counts.unmatched)
    yield items
    settles = CounterMetricFamily(
        "posbridge_passthrough_receipts",
        "Receipt closes seen by the registrar pass-through, by outcome",
        labels=["outcome"],
    )
    for outcome, n in (
        ("online", counts.settled_online),
        ("offline", counts.settled_offline),
        ("no_card", counts.no_card),
        ("failed", counts.failed),
        ("late", counts.late),
        ("voided", counts.voided),  # cancelled at the registrar after settling: refunded
        ("void_failed", counts.void_failed),
    ):
        settles.add_metric([outcome], n)
    yield settles
    running = GaugeMetricFamily(
        "posbridge_passthrough_running",
        "1 while the pass-through's relay runs",
        labels=["passthrough", "kind"],
    )
    relayed = CounterMetricFamily(
        "posbridge_passthrough_relay",
        "Each relay's counters: frames or bytes relayed, lines or blocks inserted, failures",
        labels=["passthrough", "kind", "counter"],
    )
    for entry in manager.status():
        running.add_metric([entry["name"], entry["kind"]], 1.0 if entry["running"] else 0.0)
        for counter, n in sorted(entry["counters"].items()):
            relayed.add_metric([entry["name"], entry["kind"], counter], n)
    yield running
    yield relayed
