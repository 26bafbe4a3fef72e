"""Prometheus metrics of the gateway (``GET /metrics``).

Two kinds of source:

* the running gateway, in memory: messages by kind and weight samples (counted
  by the dispatcher and the weight trace anyway, read at scrape time), and the
  latency histograms (pick to cart, exit to receipt) observed by the engine;
* the database, read at scrape time through the API's read-only connection:
  review queue length, alerts, outbox backlog, devices by state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from edge.store.repo import Store

T = TypeVar("T")

PICK_TO_CART = "pick_to_cart"
EXIT_TO_RECEIPT = "exit_to_receipt"

#: Dispatcher counters that are not message kinds.
_DISPATCH_TOTALS = {
    "received": ("storeedge_messages_received", "MQTT messages from devices, before checks"),
    "duplicates": ("storeedge_messages_duplicate", "messages dropped as duplicates (device, seq)"),
    "dead_letters": ("storeedge_dead_letters", "messages refused into the dead letters"),
}
_NOT_KINDS = {*_DISPATCH_TOTALS, "own"}


class GatewayMetrics:
    """What the gateway observes while it runs (owned by the worker thread)."""

    def __init__(self) -> None:
        self.pick_to_cart = Histogram(
            "storeedge_pick_to_cart_seconds",
            "from the hand leaving the shelf (settled weight) to the cart change",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
            registry=None,
        )
        self.exit_to_receipt = Histogram(
            "storeedge_exit_to_receipt_seconds",
            "from the exit gate event to the receipt",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 5.0),
            registry=None,
        )

    def on_latency(self, which: str, ms: int) -> None:
        histogram = self.pick_to_cart if which == PICK_TO_CART else self.exit_to_receipt
        histogram.observe(max(0, ms) / 1000)

    def histograms(self) -> list[Histogram]:
        return [self.pick_to_cart, self.exit_to_receipt]


class IngestCollector(Collector):
    """Messages by kind and weight samples, from the gateway's own counters."""

    def __init__(self, counts: Callable[[], Mapping[str, int]], samples: Callable[[], int]) -> None:
        self._counts = counts
        self._samples = samples

    def collect(self) -> Iterator[Metric]:
        counts = self._counts()
        by_kind = CounterMetricFamily(
            "storeedge_messages", "device messages handled, by kind", labels=["kind"]
        )
        for kind, n in sorted(counts.items()):
            if kind not in _NOT_KINDS:
                by_kind.add_metric([kind], n)
        yield by_kind
        for key, (name, doc) in _DISPATCH_TOTALS.items():
            yield CounterMetricFamily(name, doc, value=counts.get(key, 0))
        yield CounterMetricFamily(
            "storeedge_weight_samples", "load-cell samples handled", value=self._samples()
        )


class StoreCollector(Collector):
    """Gauges read from the database at scrape time."""

    def __init__(self, read: Callable[[Callable[[Store], Any]], Any]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        snapshot: dict[str, Any] = self._read(_snapshot)
        yield GaugeMetricFamily(
            "storeedge_review_queue_length",
            "checkout events waiting for a staff decision",
            value=snapshot["review_open"],
        )
        active = GaugeMetricFamily(
            "storeedge_alerts_active", "alerts open or acknowledged, by kind", labels=["kind"]
        )
        raised = CounterMetricFamily(
            "storeedge_alerts_raised", "alerts ever raised, by kind", labels=["kind"]
        )
        by_kind: dict[str, dict[str, int]] = snapshot["alerts"]
        for kind, states in sorted(by_kind.items()):
            active.add_metric([kind], states.get("open", 0) + states.get("acked", 0))
            raised.add_metric([kind], sum(states.values()))
        yield active
        yield raised
        backlog = snapshot["outbox"]
        yield GaugeMetricFamily(
            "storeedge_outbox_backlog_rows",
            "outbox rows not yet acknowledged by HQ",
            value=backlog.rows,
        )
        yield GaugeMetricFamily(
            "storeedge_outbox_backlog_bytes", "bytes of those rows", value=backlog.bytes
        )
        yield GaugeMetricFamily(
            "storeedge_outbox_oldest_unsent_age_seconds",
            "age of the oldest unsent outbox row (0 when none)",
            value=backlog.oldest_unsent_age_s or 0.0,
        )
        devices = GaugeMetricFamily("storeedge_devices", "devices by state", labels=["state"])
        for state, n in sorted(snapshot["devices"].items()):
            devices.add_metric([state], n)
        yield devices
        yield GaugeMetricFamily(
            "storeedge_lanes_low",
            "lanes at or below their restock threshold",
            value=snapshot["lanes_low"],
        )


def _snapshot(store: Store) -> dict[str, Any]:
    return {
        "review_open": store.review_count("open"),
        "alerts": store.alert_counts(),
        "outbox": store.outbox_backlog(),
        "devices": store.device_state_counts(),
        "lanes_low": store.lanes_low(),
    }


def build_registry(
    read: Callable[[Callable[[Store], Any]], Any], gateway: Any | None
) -> CollectorRegistry:
    """The registry behind ``/metrics``: the database always, the gateway when running.

    ``gateway`` offers ``metrics: GatewayMetrics``, ``message_counts()`` and
    ``weight_samples()`` (``edge.staff.service.StaffService``).
    """
    registry = CollectorRegistry()
    registry.register(StoreCollector(read))
    if gateway is not None:
        registry.register(IngestCollector(gateway.message_counts, gateway.weight_samples))
        for histogram in gateway.metrics.histograms():
            registry.register(histogram)
    return registry
