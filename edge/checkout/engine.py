"""The checkout engine: shelf events to carts, gates to sessions and receipts.

Runs on the gateway's single worker thread; all its state changes go through
:class:`edge.store.repo.Store`.  For each shelf event it decides *who*
(the shopper tracked nearest the changed plates, or the only shopper in the
store when there are no positions) and *what* (product and quantity from the
live planogram and the weights).  When either answer is unclear the event goes
to the review queue with its candidates instead of silently into a cart.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devices.layout import Planogram, Product
from devices.protocol import ReceiptLine, ReceiptMessage
from edge.checkout.detector import ShelfDetector, ShelfEvent
from edge.checkout.inference import READING_NOISE_G, Hypothesis, infer
from edge.checkout.positions import PositionBook, distance
from edge.config import AssociationConfig, DetectorConfig, InferenceConfig
from edge.store.repo import ReceiptRow, Store

log = logging.getLogger(__name__)

#: Below this likelihood (a residual beyond 4 sigma) no hypothesis is trusted.
MIN_LIKELIHOOD = math.exp(-0.5 * 4.0**2)
#: How long a receipt may wait for shelves near the shopper still in motion at exit.
EXIT_SETTLE_WAIT_MS = 1500
#: A product put back somewhere it is not placed is this likely a priori.
WRONG_PLACE_PRIOR = 0.3
#: A hand this near the changed plates (3-D) may have made the change ...
HAND_REACH_M = 0.35
#: ... and a second hand this much farther away still leaves doubt.
HAND_MARGIN_M = 0.08
#: A hand whose nearest frame came this close to the plates touched them.
HAND_TOUCH_M = 0.1
#: Hand positions this long before and after the change count.
HAND_SLACK_MS = 300
#: At exit, plates near where the shopper was this recently may still hold their pick.
RECENT_POSITIONS_MS = 15_000
#: How many latency samples are kept for the benchmark figures.
LATENCY_SAMPLES = 100_000

PlateKey = tuple[str, int]


@dataclass(slots=True)
class _PendingExit:
    token: str
    gate: str
    ts_ms: int
    deadline_ms: int


@dataclass
class Latencies:
    pick_to_cart_ms: deque[int] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))
    exit_to_receipt_ms: deque[int] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))


@dataclass(frozen=True, slots=True)
class Attribution:
    token: str | None
    shoppers: list[dict[str, Any]]  # the ranked candidates, for the review queue
    problem: str | None  # why nobody could be chosen


class CheckoutEngine:
    def __init__(
        self,
        planogram: Planogram,
        store: Store,
        detector_cfg: DetectorConfig,
        inference_cfg: InferenceConfig,
        on_receipt: Callable[[ReceiptMessage], None],
        association_cfg: AssociationConfig | None = None,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.planogram = planogram
        self.store = store
        self._inference = inference_cfg
        self._association = association_cfg or AssociationConfig()
        self._neighbours = detector_cfg.neighbour_plates
        self._on_receipt = on_receipt
        self.clock_ms = clock_ms
        self.positions = PositionBook()
        self.latencies = Latencies()
        self._products = {p.barcode: p for p in planogram.products}
        self.shelves = {
            shelf.device_id: ShelfDetector(shelf.device_id, shelf.plate_count, detector_cfg)
            for shelf in planogram.shelves
        }
        #: The live planogram: products seen on each plate (put-backs elsewhere add to it).
        self.plate_products: dict[PlateKey, list[str]] = {
            (shelf.device_id, plate.plate): list(plate.barcodes)
            for shelf in planogram.shelves
            for plate in shelf.plates
        }
        self._planned = {key: len(codes) for key, codes in self.plate_products.items()}
        self._plate_xyz = {
            (shelf.device_id, plate.plate): (plate.x, plate.y, plate.z)
            for shelf in planogram.shelves
            for plate in shelf.plates
            if plate.x is not None and plate.y is not None and plate.z is not None
        }
        self._plate_xy = {
            (shelf.device_id, plate.plate): (plate.x, plate.y)
            for shelf in planogram.shelves
            for plate in shelf.plates
            if plate.x is not None and plate.y is not None
        }
        #: Rows of each product per shelf: plate groups from the facings, else single plates.
        self._rows: dict[str, dict[str, list[frozenset[int]]]] = {}
        for facing in planogram.facings:
            self._rows.setdefault(facing.shelf, {}).setdefault(facing.barcode, []).append(
                frozenset(facing.plates)
            )
        for shelf in planogram.shelves:
            rows = self._rows.setdefault(shelf.device_id, {})
            for plate in shelf.plates:
                for b in plate.barcodes:
                    if not any(
                        f.barcode == b and f.shelf == shelf.device_id for f in planogram.facings
                    ):
                        rows.setdefault(b, []).append(frozenset({plate.plate}))
        self._shelf_products = {
            shelf.device_id: sorted({b for plate in shelf.plates for b in plate.barcodes})
            for shelf in planogram.shelves
        }
        self.open_sessions: set[str] = {s["token"] for s in store.open_sessions()}
        self._pending_exits: list[_PendingExit] = []

    # ------------------------------------------------------------------ inputs

    def on_weight(self, device_id: str, samples: list[list[float]], ts_ms: int, rate: int) -> None:
        for event in self.shelves[device_id].feed(samples, ts_ms, rate):
            self._on_shelf_event(event)
        self.poll()

    def on_position(
        self,
        token: str | None,
        ts_ms: int,
        x: float,
        y: float,
        hand: tuple[float, float, float] | None = None,
    ) -> None:
        if token is not None and token not in self.open_sessions:
            return  # a track of someone who has left (or never checked in)
        self.positions.add(token, ts_ms, x, y)
        if token is not None and hand is not None:
            self.positions.add_hand(token, ts_ms, *hand)

    # ------------------------------------------------------------------ shelf events

    def _on_shelf_event(self, event: ShelfEvent) -> None:
        who = self._attribute(event)
        candidates = self._candidates(event, who.token)
        hypotheses = infer(event.delta_g, candidates, self._inference.max_quantity)
        body: dict[str, Any] = {
            "plates": list(event.plates),
            "delta_g": round(event.delta_g, 1),
            "start_ms": event.start_ms,
            "end_ms": event.end_ms,
            "candidates": [_hyp_json(h) for h in hypotheses[:5]],
            "shoppers": who.shoppers[:5],
        }
        best = hypotheses[0] if hypotheses else None
        lightest = min(
            (
                p.unit_weight_g
                for p, prior in candidates
                if p.unit_weight_g > 0 and prior >= self._inference.neighbour_prior
            ),
            default=0.0,
        )
        if best is None and abs(event.delta_g) < 0.5 * lightest:
            # Far lighter than anything placed here: a nudge, a crumb, a settling package.
            self.store.record_event("small_change", event.end_ms, event.device_id, who.token, body)
            return
        problem = who.problem
        if best is None or best.likelihood < MIN_LIKELIHOOD:
            problem = "no product on or near these plates has this weight"
        elif best.confidence < self._inference.min_confidence:
            problem = "products of similar weight: cannot tell which"
        if (
            problem == "two hands on the shelf"
            and best is not None
            and best.confidence >= self._inference.min_confidence
            and event.delta_g < 0
            and self._split_between_hands(event, best, who, body)
        ):
            return
        if problem is not None or best is None or who.token is None:
            if not self.open_sessions and problem == "no shopper in the store":
                self.store.record_event(
                    "unattributed_change", event.end_ms, event.device_id, None, body
                )
                return
            self.store.add_review(
                event.device_id, event.end_ms, body, problem or "unclear", who.token
            )
            return
        token = who.token
        taken = event.delta_g < 0
        if not taken and self.store.cart(token).get(best.barcode, 0) < best.quantity:
            if self._cancels_open_pick(token, event, body):
                return
            self.store.add_review(
                event.device_id,
                event.end_ms,
                body,
                "put back an item this shopper did not take",
                token,
            )
            return
        self.store.change_cart(
            token,
            best.barcode,
            best.quantity if taken else -best.quantity,
            event.end_ms,
            event.device_id,
            {**body, "barcode": best.barcode, "quantity": best.quantity},
        )
        self.latencies.pick_to_cart_ms.append(self.clock_ms() - event.settled_ms)
        if not taken:
            self._learn_place(event, best.barcode)

    def _split_between_hands(
        self, event: ShelfEvent, best: Hypothesis, who: Attribution, body: dict[str, Any]
    ) -> bool:
        """k hands on the plates and k units gone: each hand took one."""
        hands = [s["session_token"] for s in who.shoppers if s.get("touching")]
        if len(hands) < 2 or best.quantity != len(hands):
            return False
        for token in hands:
            self.store.change_cart(
                token,
                best.barcode,
                1,
                event.end_ms,
                event.device_id,
                {**body, "barcode": best.barcode, "quantity": 1, "split_between": hands},
            )
            self.latencies.pick_to_cart_ms.append(self.clock_ms() - event.settled_ms)
        return True

    def _cancels_open_pick(self, token: str, event: ShelfEvent, body: dict[str, Any]) -> bool:
        """A put-back that undoes this shopper's pick still waiting in review settles both."""
        for item in self.store.reviews(status="open"):
            if item["session_token"] != token or item["delta_g"] >= 0:
                continue
            picked = {c["barcode"] for c in item["body"]["candidates"]}
            tolerance = max(3 * READING_NOISE_G, 0.05 * abs(event.delta_g))
            if abs(item["delta_g"] + event.delta_g) <= tolerance and any(
                c["barcode"] in picked for c in body["candidates"]
            ):
                self.store.close_review(
                    item["review_id"],
                    "dismissed",
                    event.end_ms,
                    "gateway",
                    {"cancelled_by_putback": body},
                )
                return True
        return False

    def _learn_place(self, event: ShelfEvent, barcode: str) -> None:
        """An item put back where it does not belong is there now: the next pick is right."""
        for plate in event.plates:
            products = self.plate_products.setdefault((event.device_id, plate), [])
            if barcode not in products:
                products.append(barcode)
                self.store.record_event(
                    "planogram_learned",
                    event.end_ms,
                    event.device_id,
                    None,
                    {"plate": plate, "barcode": barcode},
                )

    def _candidates(self, event: ShelfEvent, token: str | None) -> list[tuple[Product, float]]:
        """Products with a prior from where they stand relative to the changed plates.

        A product whose row covers exactly the changed plates scores 1; partial overlap
        scores the overlap's share of the union (an item lying across plates touches the
        plates of its row); products next to the change, or elsewhere on the shelf, get
        small priors; products put on these plates by shoppers (the live planogram) 1.
        """
        changed = frozenset(event.plates)
        shelf = event.device_id
        priors: dict[str, float] = {}
        for b in self._shelf_products.get(shelf, []):
            priors[b] = self._inference.shelf_prior
        for plate in event.plates:
            for near in range(plate - self._neighbours, plate + self._neighbours + 1):
                for b in self.plate_products.get((shelf, near), []):
                    priors[b] = max(priors.get(b, 0.0), self._inference.neighbour_prior)
        for b, rows in self._rows.get(shelf, {}).items():
            overlap = max(len(changed & row) / len(changed | row) for row in rows)
            if overlap > 0:
                priors[b] = max(priors.get(b, 0.0), overlap)
        for plate in event.plates:
            for b in self.plate_products.get((shelf, plate), [])[
                self._static_count(shelf, plate) :
            ]:
                priors[b] = 1.0  # learned from a put-back
        if event.delta_g > 0 and token is not None:
            # A put-back is something from this shopper's cart, most likely from here.
            cart = self.store.cart(token)
            if cart:
                priors = {b: max(priors.get(b, 0.0), WRONG_PLACE_PRIOR) for b in cart}
        return [(self._products[b], p) for b, p in priors.items() if b in self._products]

    def _static_count(self, shelf: str, plate: int) -> int:
        return self._planned.get((shelf, plate), 0)

    def _attribute(self, event: ShelfEvent) -> Attribution:
        sessions = sorted(self.open_sessions)
        if not sessions:
            return Attribution(None, [], "no shopper in the store")
        if len(sessions) == 1:  # whatever the tracker says: nobody else can have done it
            return Attribution(sessions[0], [{"session_token": sessions[0]}], None)
        by_hand = self._attribute_by_hand(event, sessions)
        if by_hand is not None:
            return by_hand
        spots = [
            self._plate_xy[(event.device_id, p)]
            for p in event.plates
            if (event.device_id, p) in self._plate_xy
        ]
        cfg = self._association
        ranked: list[tuple[float, str]] = []
        if spots and self.positions.tracking:
            spot = (sum(s[0] for s in spots) / len(spots), sum(s[1] for s in spots) / len(spots))
            for token in sessions:
                where = self.positions.mean_position(
                    token, event.start_ms - cfg.window_ms, event.end_ms + cfg.window_ms
                )
                if where is not None:
                    ranked.append((distance(where, spot), token))
            ranked.sort()
        shoppers = [{"session_token": t, "distance_m": round(d, 2)} for d, t in ranked]
        if ranked:
            best_d, best = ranked[0]
            if best_d > cfg.reach_m:
                return Attribution(None, shoppers, "no tracked shopper within reach")
            if len(ranked) > 1 and ranked[1][0] - best_d < cfg.margin_m:
                return Attribution(None, shoppers, "two shoppers equally near")
            return Attribution(best, shoppers, None)
        if len(sessions) == 1:
            return Attribution(sessions[0], [{"session_token": sessions[0]}], None)
        return Attribution(
            None,
            [{"session_token": t} for t in sessions],
            "several shoppers in the store and no positions",
        )

    def _attribute_by_hand(self, event: ShelfEvent, sessions: list[str]) -> Attribution | None:
        """The shopper whose hand was on these plates while they changed, if the tracker
        reports hands and exactly one hand was clearly there."""
        spots = [
            self._plate_xyz[(event.device_id, p)]
            for p in event.plates
            if (event.device_id, p) in self._plate_xyz
        ]
        if not spots or not self.positions.tracking_hands:
            return None
        spot = (
            sum(s[0] for s in spots) / len(spots),
            sum(s[1] for s in spots) / len(spots),
            sum(s[2] for s in spots) / len(spots),
        )
        ranked: list[tuple[float, float, str]] = []
        for token in sessions:
            d = self.positions.hand_distance(token, event.start_ms, event.settled_ms, spot)
            if d is None:  # a touch shorter than a tracker frame: look a little wider
                d = self.positions.hand_distance(
                    token, event.start_ms - HAND_SLACK_MS, event.settled_ms + HAND_SLACK_MS, spot
                )
            if d is not None:
                ranked.append((d[0], d[1], token))
        ranked.sort()
        if not ranked or ranked[0][0] > HAND_REACH_M:
            return None  # no hand seen there: fall back to where the bodies were
        shoppers = [
            {"session_token": t, "hand_m": round(mean, 2), "touching": near <= HAND_TOUCH_M}
            for mean, near, t in ranked
        ]
        touching = sum(1 for s in shoppers if s["touching"])
        if touching > 1 or (len(ranked) > 1 and ranked[1][0] - ranked[0][0] < HAND_MARGIN_M):
            return Attribution(None, shoppers, "two hands on the shelf")
        return Attribution(ranked[0][2], shoppers, None)

    # ------------------------------------------------------------------ gates

    def on_gate(self, gate: str, direction: str, token: str, ts_ms: int) -> None:
        if direction == "entry":
            if self.store.open_session(token, gate, ts_ms):
                self.open_sessions.add(token)
            else:
                self.store.record_event("session_reused", ts_ms, gate, token, {})
            return
        if token not in self.open_sessions:
            self.store.record_event("exit_without_session", ts_ms, gate, token, {})
            return
        if any(p.token == token for p in self._pending_exits):
            return
        self._pending_exits.append(
            _PendingExit(token, gate, ts_ms, self.clock_ms() + EXIT_SETTLE_WAIT_MS)
        )
        self.poll()

    def _busy_near(self, token: str) -> bool:
        """Is a plate the shopper was recently near still settling (a change not yet in)?"""
        recent = self.positions.recent(token, self.clock_ms() - RECENT_POSITIONS_MS)
        reach = self._association.reach_m
        for device_id, shelf in self.shelves.items():
            if not shelf.in_motion:
                continue
            for plate in range(len(shelf.plates)):
                if not shelf.plate_in_motion(plate):
                    continue
                xy = self._plate_xy.get((device_id, plate))
                if xy is None or not recent:
                    return True  # no way to tell: wait for it
                if any(distance(xy, here) <= reach for here in recent):
                    return True
        return False

    def poll(self) -> None:
        """Issue the receipts of shoppers who left, once no shelf near them is mid-change."""
        if not self._pending_exits:
            return
        now = self.clock_ms()
        for pending in list(self._pending_exits):
            if now >= pending.deadline_ms or not self._busy_near(pending.token):
                self._pending_exits.remove(pending)
                self._issue_receipt(pending)

    def _issue_receipt(self, pending: _PendingExit) -> None:
        cart = self.store.cart(pending.token)
        rows = []
        for barcode, quantity in sorted(cart.items()):
            product = self._products[barcode]
            rows.append(ReceiptRow(barcode, product.name, quantity, product.price_minor))
        issued = self.clock_ms()
        receipt_id = self.store.close_with_receipt(
            pending.token, pending.gate, issued, self.planogram.currency, rows
        )
        self.open_sessions.discard(pending.token)
        self.positions.forget(pending.token)
        self.latencies.exit_to_receipt_ms.append(issued - pending.ts_ms)
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
            "receipt %s for %s: %d lines, total %d %s",
            receipt_id,
            pending.token,
            len(rows),
            message.total_minor,
            message.currency,
        )
        self._on_receipt(message)

    # ------------------------------------------------------------------ review

    def resolve_review(
        self,
        review_id: str,
        *,
        barcode: str | None,
        quantity: int,
        session_token: str | None,
        by: str,
    ) -> dict[str, Any]:
        """Staff decide a review item: a product and shopper, or dismiss (barcode None)."""
        item = self.store.review_item(review_id)
        if item is None:
            raise LookupError(f"no review item {review_id}")
        if item["status"] != "open":
            raise ValueError(f"review item {review_id} is already {item['status']}")
        now = self.clock_ms()
        if barcode is None:
            self.store.close_review(review_id, "dismissed", now, by, {})
            return {"review_id": review_id, "status": "dismissed"}
        if barcode not in self._products:
            raise ValueError(f"unknown product {barcode!r}")
        if session_token is None or self.store.session(session_token) is None:
            raise ValueError(f"unknown session {session_token!r}")
        taken = float(item["delta_g"]) < 0
        delta = quantity if taken else -quantity
        decision = {"barcode": barcode, "quantity": quantity, "session_token": session_token}
        if session_token in self.open_sessions:
            self.store.resolve_review_into_cart(review_id, now, by, decision, delta)
            outcome = "cart"
        else:
            product = self._products[barcode]
            self.store.resolve_review_into_receipt(
                review_id, now, by, decision, delta, product.name, product.price_minor
            )
            outcome = "extra charge" if taken else "refund"
        return {"review_id": review_id, "status": "resolved", "applied_to": outcome, **decision}


def _hyp_json(h: Hypothesis) -> dict[str, object]:
    return {
        "barcode": h.barcode,
        "quantity": h.quantity,
        "likelihood": round(h.likelihood, 4),
        "confidence": round(h.confidence, 4),
    }
