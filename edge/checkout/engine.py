"""The checkout engine: shelf events to carts, gates to sessions and receipts.

Runs on the gateway's single worker thread; all its state changes go through
:class:`edge.store.repo.Store`.  For each shelf event it decides *who*
(the shopper tracked nearest the changed plates, or the only shopper in the
store when there are no positions) and *what* (product and quantity from the
live planogram and the weights, and where a product camera saw the grab, its
scores: see :mod:`edge.checkout.sightings`).  When either answer is unclear the
event goes to the review queue with its candidates instead of silently into a cart.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from devices.layout import Planogram, Product
from devices.protocol import ReceiptLine, ReceiptMessage
from edge.checkout.association import Associator, Attribution
from edge.checkout.busy_hands import BusyHands
from edge.checkout.camera_views import CameraViews, _hyp_json, _may_be_two
from edge.checkout.detector import ShelfDetector, ShelfEvent
from edge.checkout.engine_part import Held
from edge.checkout.hands import Hands
from edge.checkout.inference import (
    MIN_LIKELIHOOD,
    READING_NOISE_G,
    Hypothesis,
    clear,
    fuse_vision,
    infer,
    infer_pairs,
)
from edge.checkout.live_planogram import LivePlanogram
from edge.checkout.positions import PositionBook, distance
from edge.checkout.press import Presses, combined, precedes
from edge.checkout.sightings import Sightings
from edge.config import AssociationConfig, DetectorConfig, InferenceConfig
from edge.store.repo import ReceiptRow, Store

log = logging.getLogger(__name__)

#: How long a receipt may wait for shelves near the shopper still in motion at exit.
EXIT_SETTLE_WAIT_MS = 1500
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
    #: Told every latency as ("pick_to_cart" | "exit_to_receipt", ms): the metrics.
    listeners: list[Callable[[str, int], None]] = field(default_factory=list)

    def pick_to_cart(self, ms: int) -> None:
        self.pick_to_cart_ms.append(ms)
        for listener in self.listeners:
            listener("pick_to_cart", ms)

    def exit_to_receipt(self, ms: int) -> None:
        self.exit_to_receipt_ms.append(ms)
        for listener in self.listeners:
            listener("exit_to_receipt", ms)


class CheckoutEngine(CameraViews, Hands):
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
        self._detector = detector_cfg
        self._on_receipt = on_receipt
        self.clock_ms = clock_ms
        self.positions = PositionBook()
        self.latencies: Latencies = Latencies()
        self.shelves = {
            shelf.device_id: ShelfDetector(shelf.device_id, shelf.plate_count, detector_cfg)
            for shelf in planogram.shelves
        }
        self.live = LivePlanogram(planogram, inference_cfg, detector_cfg.neighbour_plates)
        #: Products receipts and reviews can name: the planogram's, and those a newer
        #: planogram dropped (a cart may still hold them).
        self._products: dict[str, Product] = dict(self.live.products)
        self.associator = Associator(planogram, self.positions, self._association)
        self.open_sessions: set[str] = {s["token"] for s in store.open_sessions()}
        self._pending_exits: list[_PendingExit] = []
        #: What product cameras saw (ProductSeen), and unclear events waiting for a view.
        self.sightings = Sightings(detector_cfg.neighbour_plates)
        #: Changes no product explains, that may be a hand pressing (edge.checkout.press).
        self.presses = Presses()
        self._held: list[Held] = []
        #: Whom each recent shelf event was put to (two hands at once on one shelf).
        self.busy_hands = BusyHands()
        #: Told every shelf event after the engine handled it (restock levels).
        self.shelf_listeners: list[Callable[[ShelfEvent], None]] = []

    # ------------------------------------------------------------------ inputs

    def on_weight(self, device_id: str, samples: list[list[float]], ts_ms: int, rate: int) -> None:
        for event in self.shelves[device_id].feed(samples, ts_ms, rate):
            self.sightings.note_event(event)
            self._on_shelf_event(self._unpressed(event))
            for listener in self.shelf_listeners:
                listener(event)
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

    def reconfigure(
        self,
        detector_cfg: DetectorConfig,
        inference_cfg: InferenceConfig,
        association_cfg: AssociationConfig,
    ) -> None:
        """New settings while running (a configuration from HQ).  Each plate keeps its
        settled level, calibration state and changes waiting for their neighbours, so
        nothing in progress is lost; what the live planogram learned stays."""
        if detector_cfg != self._detector:
            for device_id, old in list(self.shelves.items()):  # the same dict: others hold it
                self.shelves[device_id] = old.reconfigured(detector_cfg)
        self._detector = detector_cfg
        self._inference = inference_cfg
        self._association = association_cfg
        self.live.reconfigure(inference_cfg, detector_cfg.neighbour_plates)
        self.sightings.neighbour_plates = detector_cfg.neighbour_plates
        self.associator = Associator(self.planogram, self.positions, association_cfg)

    def busy_shelves(self, shelves: Iterable[str]) -> list[str]:
        """Those of ``shelves`` with a change in progress: a hand on a plate, a change
        waiting for its neighbours, or an event waiting for a camera's view."""
        held = {h.event.device_id for h in self._held}
        return [
            d for d in shelves if d in held or (d in self.shelves and self.shelves[d].in_motion)
        ]

    def replace_planogram(self, planogram: Planogram) -> None:
        """A new planogram while running (HQ's planogram or catalog), on the worker.

        A shelf whose plate count stays keeps its detector as it is; one whose plate
        count changed keeps the plates it still has (see :meth:`ShelfDetector.resized`);
        new shelves get fresh detectors, removed ones are forgotten (the caller waits
        until those are still: :meth:`busy_shelves`).  From now on inference uses the
        new products, weights and places (the live planogram keeps what it learned
        where shelf and product remain), receipts the new names; carts keep their
        lines, and a product the planogram dropped keeps its name for them."""
        wanted = {shelf.device_id: shelf.plate_count for shelf in planogram.shelves}
        for device_id in [d for d in self.shelves if d not in wanted]:
            del self.shelves[device_id]  # the same dict: others hold it
        for device_id, plates in wanted.items():
            old = self.shelves.get(device_id)
            if old is None:
                self.shelves[device_id] = ShelfDetector(device_id, plates, self._detector)
            elif len(old.plates) != plates:
                self.shelves[device_id] = old.resized(plates, self._detector)
        live = LivePlanogram(planogram, self._inference, self._detector.neighbour_plates)
        live.keep_learned(self.live)
        self.live = live
        self._products = {**self._products, **live.products}
        self.associator = Associator(planogram, self.positions, self._association)
        self.planogram = planogram

    # ------------------------------------------------------------------ shelf events

    def _on_shelf_event(
        self,
        event: ShelfEvent,
        *,
        final: bool = False,
        who: Attribution | None = None,
        hold_until: int | None = None,
    ) -> None:
        """Score and decide one shelf event; ``final``: decide now (no more waiting);
        ``who``: the shopper already known (a part of an event split between hands);
        ``hold_until``: it waited for a view already, and may wait no longer than this."""
        split = who is not None
        if who is None:
            who = self._attribute(event, final=final, waited=hold_until is not None)
            if who is None:
                return  # split between hands, or waiting for its shelf
        cart = self.store.cart(who.token) if event.delta_g > 0 and who.token else None
        candidates = self.live.candidates(event, cart)
        hypotheses = infer(event.delta_g, candidates, self._inference.max_quantity)
        if (
            not split
            and who.token is not None
            and (not hypotheses or hypotheses[0].likelihood < MIN_LIKELIHOOD)
            and len(hands := self.associator.reached(event, who)) > 1
            and self._split_by_hands(event, hands, final)
        ):
            return  # no one product explains it, and another hand reached in: two grabs
        if who.token is not None:
            self.busy_hands.note(event, who.token)
        moved = event.moved(self._detector.min_delta_g)
        if moved is not None:
            self._on_move(event, *moved, who)
            return
        nudge = self._nudge(event, candidates, hypotheses)
        seen = self.sightings.take(event, who.token)
        who = self._named_by_view(who, seen)
        by_weight = hypotheses[0] if hypotheses else None
        if seen is not None:
            hypotheses = fuse_vision(hypotheses, seen.scores, self._inference.vision_weight)
            if not final and self._hold_for_second_view(
                event, who, hypotheses, seen, split, hold_until
            ):
                return
        elif not final and self._hold_for_view(event, who, hypotheses, split=split, nudge=nudge):
            return
        body: dict[str, Any] = {
            "plates": list(event.plates),
            "delta_g": round(event.delta_g, 1),
            "start_ms": event.start_ms,
            "end_ms": event.end_ms,
            "candidates": [_hyp_json(h) for h in hypotheses[:5]],
            "shoppers": who.shoppers[:5],
        }
        best = hypotheses[0] if hypotheses else None
        if seen is not None:
            body["vision"] = self._vision_json(seen, by_weight, best)
        if nudge:
            # Far lighter than anything placed here: a nudge, a crumb, a settling package.
            self.store.record_event("small_change", event.end_ms, event.device_id, who.token, body)
            self.presses.note(event)
            return
        problem = who.problem
        if best is None or best.likelihood < MIN_LIKELIHOOD:
            problem = "no product on or near these plates has this weight"
        elif best.confidence < self._inference.min_confidence:
            problem = "products of similar weight: cannot tell which"
        if (
            best is not None
            and best.quantity > 1
            and best.confidence >= self._inference.min_confidence
            and event.delta_g < 0
            and self._split_between_hands(event, best, who, body)
        ):
            return
        if (
            seen is not None
            and _may_be_two(best)
            and self._one_of_each(event, seen, candidates, who, body)
        ):
            return
        if (
            (best is None or best.likelihood < MIN_LIKELIHOOD)
            and who.token is not None
            and who.problem is None
            and len(who.touching) <= 1  # another hand in reach: maybe two grabs, not one
            and self._two_by_weight(event, candidates, who.token, body)
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
        self.latencies.pick_to_cart(self.clock_ms() - event.settled_ms)
        if not taken:
            self._learn_place(event, best.barcode)

    def _two_by_weight(
        self,
        event: ShelfEvent,
        candidates: list[tuple[Product, float]],
        token: str,
        body: dict[str, Any],
    ) -> bool:
        """A change no one product explains, that one unit each of two products placed
        here explains clearly: one of each.  The pairs go into the body either way (for
        the review queue when none is clear)."""
        pairs = infer_pairs(event.delta_g, candidates, self._inference.neighbour_prior)
        body["pairs"] = [
            {
                "barcodes": list(p.barcodes),
                "likelihood": round(p.likelihood, 4),
                "confidence": round(p.confidence, 4),
            }
            for p in pairs[:3]
        ]
        if (
            not pairs
            or pairs[0].likelihood < MIN_LIKELIHOOD
            or pairs[0].confidence < self._inference.min_confidence
        ):
            return False
        return self._charge_each(token, pairs[0].barcodes, event, body)

    def _nudge(
        self,
        event: ShelfEvent,
        candidates: list[tuple[Product, float]],
        hypotheses: list[Hypothesis],
    ) -> bool:
        """No hypothesis, and far lighter than anything placed here: a nudge, a crumb,
        a settling package (a ``small_change``, not an item)."""
        lightest = min(
            (
                p.unit_weight_g
                for p, prior in candidates
                if p.unit_weight_g > 0 and prior >= self._inference.neighbour_prior
            ),
            default=0.0,
        )
        return not hypotheses and abs(event.delta_g) < 0.5 * lightest

    def _unpressed(self, event: ShelfEvent) -> ShelfEvent:
        """``event`` measured from before a hand pressed its plates (see
        :mod:`edge.checkout.press`), when that fits a product better; else as it is."""
        small = self.presses.before(event)
        held = None
        if small is None:  # or one no product explains that waits for a camera's view
            held = next(
                (
                    h
                    for h in reversed(self._held)
                    if precedes(h.event, event) and self._best_likelihood(h.event) < MIN_LIKELIHOOD
                ),
                None,
            )
            small = held.event if held is not None else None
        if small is None:
            return event
        whole = combined(event, small)
        if self._best_likelihood(whole) <= self._best_likelihood(event):
            return event
        if held is not None:
            self._held.remove(held)
        else:
            self.presses.remove(small)
        self.store.record_event(
            "hand_press",
            event.end_ms,
            event.device_id,
            None,
            {
                "plates": list(event.plates),
                "pressed_g": round(small.delta_g, 1),
                "measured_g": round(event.delta_g, 1),
                "delta_g": round(whole.delta_g, 1),
            },
        )
        return whole

    def _best_likelihood(self, event: ShelfEvent) -> float:
        found = infer(
            event.delta_g, self.live.candidates(event, None), self._inference.max_quantity
        )
        return max((h.likelihood for h in found), default=0.0)

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

    def _on_move(
        self, event: ShelfEvent, gone: ShelfEvent, came: ShelfEvent, who: Attribution
    ) -> None:
        """Weight went from some plates of the shelf to others, the total about the
        same, and no two hands to split it between: an item moved on the shelf.  No cart
        changes; when the plates it left say clearly what it was, the live planogram
        learns where it lies now (``moved`` event, and ``planogram_learned``)."""
        hypotheses = infer(
            gone.delta_g, self.live.candidates(gone, None), self._inference.max_quantity
        )
        best = hypotheses[0] if hypotheses else None
        body: dict[str, Any] = {
            "plates": list(event.plates),
            "deltas_g": [round(d, 1) for d in event.deltas_g],
            "start_ms": event.start_ms,
            "end_ms": event.end_ms,
            "from": list(gone.plates),
            "to": list(came.plates),
            "candidates": [_hyp_json(h) for h in hypotheses[:3]],
            "shoppers": who.shoppers[:5],
        }
        if clear(best, self._inference.min_confidence):
            body.update(barcode=best.barcode, quantity=best.quantity)
            self._learn_place(came, best.barcode)
        self.store.record_event("moved", event.end_ms, event.device_id, who.token, body)

    def _learn_place(self, event: ShelfEvent, barcode: str) -> None:
        """An item put back where it does not belong is there now: the next pick is right."""
        for plate in self.live.learn(event, barcode):
            self.store.record_event(
                "planogram_learned",
                event.end_ms,
                event.device_id,
                None,
                {"plate": plate, "barcode": barcode},
            )

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
        if any(h.token in (token, None) for h in self._held):
            return True  # a change of theirs (or of nobody known) waits for a camera's view
        recent = self.positions.recent(token, self.clock_ms() - RECENT_POSITIONS_MS)
        reach = self._association.reach_m
        for device_id, shelf in self.shelves.items():
            if not shelf.in_motion:
                continue
            for plate in range(len(shelf.plates)):
                if not shelf.plate_in_motion(plate):
                    continue
                xy = self.associator.plate_xy.get((device_id, plate))
                if xy is None or not recent:
                    return True  # no way to tell: wait for it
                if any(distance(xy, here) <= reach for here in recent):
                    return True
        return False

    def poll(self) -> None:
        """Issue the receipts of shoppers who left, once no shelf near them is mid-change."""
        if self._held:
            self._release_held()
        if self.sightings.has_orphans:
            self._decide_views()
        if not self._pending_exits:
            return
        now = self.clock_ms()
        for pending in list(self._pending_exits):
            if now >= pending.deadline_ms or not self._busy_near(pending.token):
                self._pending_exits.remove(pending)
                if self.sightings.has_orphans:
                    self._decide_views(exit_ms=pending.ts_ms)
                self._issue_receipt(pending)

    def _issue_receipt(self, pending: _PendingExit) -> None:
        cart = self.store.cart(pending.token)
        rows = []
        for barcode, quantity in sorted(cart.items()):
            product = self._products[barcode]
            price = self.store.price_minor(barcode, product.price_minor)  # the catalog's
            rows.append(ReceiptRow(barcode, product.name, quantity, price))
        issued = self.clock_ms()
        receipt_id = self.store.close_with_receipt(
            pending.token, pending.gate, issued, self.planogram.currency, rows
        )
        self.open_sessions.discard(pending.token)
        self.positions.forget(pending.token)
        self.latencies.exit_to_receipt(issued - pending.ts_ms)
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
        if item["body"].get("vision_only"):  # no weight: the view's way, else a take
            taken = item["body"].get("action") != "put_back"
        else:
            taken = float(item["delta_g"]) < 0
        delta = quantity if taken else -quantity
        decision = {"barcode": barcode, "quantity": quantity, "session_token": session_token}
        if session_token in self.open_sessions:
            self.store.resolve_review_into_cart(review_id, now, by, decision, delta)
            outcome = "cart"
        else:
            product = self._products[barcode]
            price = self.store.price_minor(barcode, product.price_minor)  # the catalog's
            self.store.resolve_review_into_receipt(
                review_id, now, by, decision, delta, product.name, price
            )
            outcome = "extra charge" if taken else "refund"
        return {"review_id": review_id, "status": "resolved", "applied_to": outcome, **decision}
