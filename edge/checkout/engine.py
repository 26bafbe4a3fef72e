"""The checkout engine: weight events to carts, gates to sessions and receipts.

Runs on the gateway's single worker thread; all its state changes go through
:class:`edge.store.repo.Store`.  Shopper association in this first version
uses gate events only: a pick belongs to the one shopper in the store.  When
several shoppers are in, or the best product hypothesis is weak, the event is
recorded for review instead of going silently into a cart.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from devices.layout import Planogram
from devices.protocol import ReceiptLine, ReceiptMessage
from edge.checkout.detector import ShelfDetector, WeightEvent
from edge.checkout.inference import Hypothesis, infer
from edge.config import DetectorConfig, InferenceConfig
from edge.store.repo import ReceiptRow, Store

log = logging.getLogger(__name__)

#: Below this likelihood (a residual beyond 4 sigma) no hypothesis is trusted.
MIN_LIKELIHOOD = math.exp(-0.5 * 4.0**2)
#: How long a receipt may wait for shelves still in motion at exit.
EXIT_SETTLE_WAIT_MS = 1500


@dataclass(slots=True)
class _PendingExit:
    token: str
    gate: str
    ts_ms: int
    deadline_ms: int


class CheckoutEngine:
    def __init__(
        self,
        planogram: Planogram,
        store: Store,
        detector_cfg: DetectorConfig,
        inference_cfg: InferenceConfig,
        on_receipt: Callable[[ReceiptMessage], None],
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.planogram = planogram
        self.store = store
        self._inference = inference_cfg
        self._on_receipt = on_receipt
        self._clock_ms = clock_ms
        self.shelves = {
            shelf.device_id: ShelfDetector(shelf.device_id, shelf.plate_count, detector_cfg)
            for shelf in planogram.shelves
        }
        self._plate_products = {
            (shelf.device_id, plate.plate): [planogram.product(plate.barcode)]
            for shelf in planogram.shelves
            for plate in shelf.plates
        }
        self._pending_exits: list[_PendingExit] = []

    # ------------------------------------------------------------------ weight

    def on_weight(self, device_id: str, samples: list[list[float]], ts_ms: int, rate: int) -> None:
        shelf = self.shelves[device_id]
        for event in shelf.feed(samples, ts_ms, rate):
            self._on_weight_event(event)
        self.poll()

    def _on_weight_event(self, event: WeightEvent) -> None:
        candidates = self._plate_products.get((event.device_id, event.plate), [])
        hypotheses = infer(event.delta_g, candidates, self._inference.max_quantity)
        body = {
            "plate": event.plate,
            "delta_g": round(event.delta_g, 1),
            "start_ms": event.start_ms,
            "end_ms": event.end_ms,
            "candidates": [_hyp_json(h) for h in hypotheses[:5]],
        }
        best = hypotheses[0] if hypotheses else None
        if (
            best is None
            or best.likelihood < MIN_LIKELIHOOD
            or best.confidence < self._inference.min_confidence
        ):
            self.store.record_event(
                "review_needed",
                event.end_ms,
                event.device_id,
                None,
                {**body, "why": "weak product hypothesis"},
            )
            return
        sessions = self.store.open_sessions()
        if not sessions:
            self.store.record_event(
                "unattributed_change", event.end_ms, event.device_id, None, body
            )
            return
        if len(sessions) > 1:
            self.store.record_event(
                "review_needed",
                event.end_ms,
                event.device_id,
                None,
                {
                    **body,
                    "why": "several shoppers in the store",
                    "sessions": [s["token"] for s in sessions],
                },
            )
            return
        token = sessions[0]["token"]
        taken = event.delta_g < 0
        delta = best.quantity if taken else -best.quantity
        if not taken and self.store.cart(token).get(best.barcode, 0) < best.quantity:
            self.store.record_event(
                "putback_not_in_cart", event.end_ms, event.device_id, token, body
            )
            return
        self.store.change_cart(
            token,
            best.barcode,
            delta,
            event.end_ms,
            event.device_id,
            {
                **body,
                "barcode": best.barcode,
                "quantity": best.quantity,
                "pick_to_cart_ms": self._clock_ms() - event.end_ms,
            },
        )

    # ------------------------------------------------------------------ gates

    def on_gate(self, gate: str, direction: str, token: str, ts_ms: int) -> None:
        if direction == "entry":
            if not self.store.open_session(token, gate, ts_ms):
                self.store.record_event("session_reused", ts_ms, gate, token, {})
            return
        session = self.store.session(token)
        if session is None or session["state"] != "open":
            self.store.record_event("exit_without_session", ts_ms, gate, token, {})
            return
        if any(p.token == token for p in self._pending_exits):
            return
        self._pending_exits.append(
            _PendingExit(token, gate, ts_ms, self._clock_ms() + EXIT_SETTLE_WAIT_MS)
        )
        self.poll()

    def poll(self) -> None:
        """Issue the receipts of shoppers who left, once no shelf is mid-change."""
        if not self._pending_exits:
            return
        now = self._clock_ms()
        moving = any(s.in_motion for s in self.shelves.values())
        ready = [p for p in self._pending_exits if not moving or now >= p.deadline_ms]
        for pending in ready:
            self._pending_exits.remove(pending)
            self._issue_receipt(pending)

    def _issue_receipt(self, pending: _PendingExit) -> None:
        cart = self.store.cart(pending.token)
        rows = []
        for barcode, quantity in sorted(cart.items()):
            product = self.planogram.product(barcode)
            rows.append(ReceiptRow(barcode, product.name, quantity, product.price_minor))
        issued = self._clock_ms()
        receipt_id = self.store.close_with_receipt(
            pending.token, pending.gate, issued, self.planogram.currency, rows
        )
        message = ReceiptMessage(
            receipt_id=receipt_id,
            session_token=pending.token,
            currency=self.planogram.currency,
            total_minor=sum(r.line_total_minor for r in rows),
            lines=[
                ReceiptLine(
                    barcode=r.barcode,
                    name=r.name,
                    quantity=r.quantity,
                    unit_price_minor=r.unit_price_minor,
                    line_total_minor=r.line_total_minor,
                )
                for r in rows
            ],
            exited_ts=pending.ts_ms,
            issued_ts=issued,
        )
        log.info(
            "receipt %s for %s: %d lines, total %d %s (exit to receipt %d ms)",
            receipt_id,
            pending.token,
            len(rows),
            message.total_minor,
            message.currency,
            issued - pending.ts_ms,
        )
        self._on_receipt(message)


def _hyp_json(h: Hypothesis) -> dict[str, object]:
    return {
        "barcode": h.barcode,
        "quantity": h.quantity,
        "likelihood": round(h.likelihood, 4),
        "confidence": round(h.confidence, 4),
    }
