"""The staff side of the running gateway: restock and cold-chain alerts, the weight
trace and the metrics, wired to the worker (inputs) and to the API (views).

The worker calls ``on_weight``, ``on_temperature`` and ``tick``; shelf events
and latencies arrive through the engine's listeners.  The API reads the trace,
the counters and the planogram from any thread and runs staff actions through
``call`` (on the worker).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from devices.layout import Planogram
from edge.alerts import Alerter
from edge.checkout.engine import CheckoutEngine
from edge.config import ColdChainConfig, GatewayConfig
from edge.staff.coldchain import ColdChainMonitor
from edge.staff.metrics import GatewayMetrics
from edge.staff.restock import RestockMonitor
from edge.staff.trace import Point, WeightTrace
from edge.store.repo import Store


class StaffService:
    def __init__(
        self,
        config: GatewayConfig,
        planogram: Planogram,
        store: Store,
        alerter: Alerter,
        engine: CheckoutEngine,
        call: Callable[[Callable[[], Any]], Any],
        message_counts: Callable[[], Mapping[str, int]],
        calibration: Callable[[str, int], object] = lambda _device, _plate: None,
    ) -> None:
        """``calibration``: a plate's current calibration factors (compared, not used)."""
        self.planogram = planogram
        self.cold_chain: ColdChainConfig = config.cold_chain
        self.metrics = GatewayMetrics()
        self.trace = WeightTrace(config.dashboard.trace_s)
        self.restock = RestockMonitor(
            planogram,
            config.restock,
            store,
            alerter,
            engine.shelves,
            engine.clock_ms,
            calibration,
        )
        self.cold = ColdChainMonitor(config.cold_chain, store, alerter)
        engine.shelf_listeners.append(self.restock.on_shelf_event)
        engine.latencies.listeners.append(self.metrics.on_latency)
        self._call = call
        self._message_counts = message_counts

    # ------------------------------------------------------------------ worker side

    def replace_planogram(self, planogram: Planogram) -> None:
        """A new planogram while running: the restock lanes follow (see RestockMonitor)."""
        self.restock.replace_planogram(planogram)
        self.planogram = planogram

    def on_weight(self, device_id: str, grams: list[list[float]], ts_ms: int) -> None:
        self.trace.feed(device_id, grams, ts_ms)

    def on_temperature(self, device_id: str, ts_ms: int, celsius: float) -> None:
        self.cold.on_reading(device_id, ts_ms, celsius)

    def tick(self) -> None:
        """Every few seconds on the worker."""
        self.restock.tick()

    # ------------------------------------------------------------------ API side

    def weight_trace(self, device_id: str, since_ms: int | None = None) -> list[Point]:
        return self.trace.points(device_id, since_ms)

    def message_counts(self) -> dict[str, int]:
        # dict() of a Counter is one C call under the GIL: a consistent copy.
        return dict(self._message_counts())

    def weight_samples(self) -> int:
        return self.trace.samples

    def count_lane(self, device_id: str, barcode: str, units: int, by: str) -> dict[str, Any]:
        """Staff counted a lane (runs on the worker)."""
        result: dict[str, Any] = self._call(
            lambda: self.restock.count(device_id, barcode, units, by)
        )
        return result
