"""Product cameras in the checkout engine: views of grabs and hand-offs, shelf events
held for a view, views fused into a decision, and views no weight change fits.

:class:`CameraViews` is a mixin of :class:`edge.checkout.engine.CheckoutEngine` (an
:class:`edge.checkout.engine_part.EnginePart`).  ``_hyp_json`` lives here too: the
engine's weight decisions share it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from devices.layout import Product
from edge.checkout.association import Attribution
from edge.checkout.detector import ShelfEvent
from edge.checkout.engine_part import EnginePart, Held
from edge.checkout.handoff import decide_handoff
from edge.checkout.inference import MIN_LIKELIHOOD, Hypothesis, joint_likelihood
from edge.checkout.sightings import ORPHAN_WAIT_MS, Sighting
from edge.checkout.view_alone import decide_view_alone, too_light

log = logging.getLogger(__name__)

#: A view alone is matched to the hands seen this long before and after it.
VIEW_SPAN_MS = 500


class CameraViews(EnginePart):
    """The engine's product-camera part (a mixin of the checkout engine)."""

    # ------------------------------------------------------------------ inputs

    def on_product_seen(
        self,
        camera: str,
        shelf_id: str,
        plates: list[int] | None,
        ts_ms: int,
        scores: dict[str, float],
        token: str | None = None,
        action: str | None = None,
    ) -> None:
        """A product camera's view of a grab: kept for the shelf event it belongs to; an
        event already waiting for it is decided now.  One no shelf event fits is decided
        later on its own (:meth:`_on_view_alone`)."""
        where = tuple(plates) if plates else None
        sighting = Sighting(camera, shelf_id, where, ts_ms, scores, token, action)
        self.sightings.add(sighting, self.clock_ms())
        for held in self._held:
            if not held.shelf_wait and self.sightings.fits(sighting, held.event, held.token):
                self._held.remove(held)
                self.sightings.stats.held_then_seen += 1
                # Its first view may still call for a second (several units, or a
                # weight no one product explains); after that, decide.
                self._on_shelf_event(
                    held.event, final=held.second, who=held.split, hold_until=held.deadline_ms
                )
                break  # one view serves one event

    def on_handoff_seen(
        self,
        camera: str,
        giver: str,
        taker: str,
        quantity: int,
        ts_ms: int,
        scores: dict[str, float],
    ) -> None:
        """A camera saw ``quantity`` units pass from ``giver``'s hand to ``taker``'s: the
        product is the one of the giver's cart the camera scores clearly best, and it
        moves to the taker's cart (who leaves with it pays for it).  One the engine
        cannot place (a shopper not in the store, nothing in the giver's cart that fits
        the view) is recorded as ``handoff_unclear`` with the reason; carts stay."""
        body: dict[str, Any] = {
            "camera": camera,
            "from": giver,
            "to": taker,
            "quantity": quantity,
            "top": _top3(scores),
        }
        if giver not in self.open_sessions or taker not in self.open_sessions:
            problem: str | None = "the giver or the taker is not in the store"
        else:
            decision = decide_handoff(
                self.store.cart(giver), quantity, scores, self._inference.min_confidence
            )
            body["candidates"] = {b: round(v, 4) for b, v in decision.candidates.items()}
            if decision.barcode is not None:
                self.store.move_between_carts(
                    giver, taker, decision.barcode, quantity, ts_ms, camera, body
                )
                return
            problem = decision.problem
        self.store.record_event(
            "handoff_unclear", ts_ms, camera, taker, {**body, "reason": problem}
        )
        log.warning("hand-off from %s to %s not applied: %s", giver, taker, problem)

    # ------------------------------------------------------------------ held for a view

    def _hold_for_view(
        self,
        event: ShelfEvent,
        who: Attribution,
        hypotheses: list[Hypothesis],
        *,
        split: bool = False,
        nudge: bool = False,
    ) -> bool:
        """Hold an event that weight cannot decide, decides with less confidence than
        ``inference.vision_confirm_below``, or cannot explain with one product (two
        products in one grab?), while product cameras report: its view may still be
        on the way.  Hold one whose shopper is unclear while cameras name shoppers.  A
        sure answer for a known shopper, a ``nudge`` (far lighter than anything
        there), or a store without product cameras never waits."""
        hold = self._inference.vision_hold_ms
        now = self.clock_ms()
        if hold <= 0 or nudge or not self.sightings.live(now):
            return False
        confirm_below = max(self._inference.min_confidence, self._inference.vision_confirm_below)
        sure = bool(hypotheses) and (
            hypotheses[0].likelihood >= MIN_LIKELIHOOD and hypotheses[0].confidence >= confirm_below
        )
        whose = who.token is None and bool(self.open_sessions) and self.sightings.naming(now)
        if sure and not whose:
            return False
        self._hold(Held(event, who.token, now + hold, who if split else None))
        return True

    def _named_by_view(self, who: Attribution, seen: Sighting | None) -> Attribution:
        """An unclear shopper settled by the view of the grab, when it names one who is in
        the store (a camera that saw whose hand it was); otherwise ``who`` as it was."""
        if who.token is not None or seen is None or seen.session_token not in self.open_sessions:
            return who
        named = seen.session_token
        first = {"session_token": named, "named_by": seen.camera}
        others = [s for s in who.shoppers if s.get("session_token") != named]
        return Attribution(named, [first, *others], None)

    def _hold_for_second_view(
        self,
        event: ShelfEvent,
        who: Attribution,
        hypotheses: list[Hypothesis],
        seen: Sighting,
        split: bool,
        hold_until: int | None = None,
    ) -> bool:
        """Several units in one grab, or a weight no one product explains, and one view
        so far: wait (``vision_hold_ms``) for another view of the grab, which may name
        a second product (one of each).  The view stays available to the event.  An
        event that already waited for its first view waits no longer than it was
        going to (``hold_until``): one grab never waits more than ``vision_hold_ms``."""
        hold = self._inference.vision_hold_ms
        if hold <= 0 or not _may_be_two(hypotheses[0] if hypotheses else None):
            return False
        if self.sightings.has_other(event, who.token, seen.top[0]):
            return False  # the second view is here already: decide now
        self.sightings.restore(seen)
        until = self.clock_ms() + hold if hold_until is None else hold_until
        self._hold(Held(event, who.token, until, who if split else None, second=True))
        return True

    def _hold(self, held: Held) -> None:
        self._held.append(held)
        self.sightings.stats.held += 1

    def _release_held(self) -> None:
        """Events that waited long enough for a view are decided without one; those
        waiting for their shelf, once it is still."""
        now = self.clock_ms()
        for held in list(self._held):
            if held.shelf_wait:
                shelf = self.shelves.get(held.event.device_id)
                if now >= held.deadline_ms or shelf is None or not shelf.in_motion:
                    self._held.remove(held)
                    self._on_shelf_event(held.event, hold_until=held.deadline_ms)
            elif now >= held.deadline_ms:
                self._held.remove(held)
                self._on_shelf_event(held.event, final=True, who=held.split)

    def _vision_json(
        self, seen: Sighting, by_weight: Hypothesis | None, best: Hypothesis | None
    ) -> dict[str, Any]:
        """What the event body records about the view that was fused in."""
        changed = (
            by_weight is not None
            and best is not None
            and (by_weight.barcode, by_weight.quantity) != (best.barcode, best.quantity)
        )
        self.sightings.stats.changed += changed
        return {
            "camera": seen.camera,
            "seen_ms": seen.ts_ms,
            "plates": list(seen.plates) if seen.plates else None,
            "top": _top3(seen.scores),
            "weight_best": _hyp_json(by_weight) if by_weight is not None else None,
            "changed": changed,
        }

    def _one_of_each(
        self,
        event: ShelfEvent,
        seen: Sighting,
        candidates: list[tuple[Product, float]],
        who: Attribution,
        body: dict[str, Any],
    ) -> bool:
        """Two units gone (or back) in one event, or a weight no one product explains,
        and a second view of the same grab names another product clearly: one unit of
        each, when their weights together fit the change (two products taken quickly
        from one plate, one settle)."""
        token, first = who.token, seen.top
        if token is None or who.problem is not None or first[1] < self._inference.min_confidence:
            return False
        other = self.sightings.take_other(event, token, first[0])
        if other is None:
            return False
        second = other.top
        placed = {p.barcode: p for p, _prior in candidates}
        pair = [placed.get(first[0]), placed.get(second[0])]
        if (
            second[1] < self._inference.min_confidence
            or None in pair
            or joint_likelihood(event.delta_g, [p for p in pair if p is not None]) < MIN_LIKELIHOOD
        ):
            return False
        body["vision"]["also"] = {"seen_ms": other.ts_ms, "top": _top3(other.scores)}
        return self._charge_each(token, (first[0], second[0]), event, body)

    def _charge_each(
        self, token: str, barcodes: tuple[str, str], event: ShelfEvent, body: dict[str, Any]
    ) -> bool:
        """One unit of each of ``barcodes`` into ``token``'s cart (a take), or out of it
        (a put-back: only when the cart holds each; else False and nothing changes)."""
        sign = 1 if event.delta_g < 0 else -1
        if sign < 0:
            cart = self.store.cart(token)
            if any(cart.get(b, 0) < 1 for b in barcodes):
                return False
        for barcode in barcodes:
            self.store.change_cart(
                token,
                barcode,
                sign,
                event.end_ms,
                event.device_id,
                {**body, "barcode": barcode, "quantity": 1, "one_of_each": list(barcodes)},
            )
        self.latencies.pick_to_cart(self.clock_ms() - event.settled_ms)
        return True

    # ------------------------------------------------------------------ views alone

    def _decide_views(self, exit_ms: int | None = None) -> None:
        """Decide the views no weight change fitted (see :meth:`_on_view_alone`) once
        they waited long enough; with ``exit_ms`` (a shopper is leaving), at once those
        of products too light to weigh seen before then, so that the receipt has them."""
        now = self.clock_ms()
        if exit_ms is None:
            due = self.sightings.due_orphans(now, self._still_under)
        else:
            due = self.sightings.due_orphans(
                max(now, exit_ms + ORPHAN_WAIT_MS),
                lambda view: (
                    view.ts_ms <= exit_ms
                    and too_light(self._products.get(view.top[0]), self._detector.min_delta_g)
                    and self._still_under(view)
                ),
            )
        for view in due:
            self._on_view_alone(view)

    def _still_under(self, view: Sighting) -> bool:
        """Is nothing in progress on the plates under ``view`` that it may yet belong to?"""
        shelf = self.shelves.get(view.shelf_id)
        if shelf is None:
            return True
        if any(h.event.device_id == view.shelf_id for h in self._held):
            return False
        if not shelf.in_motion:
            return True
        count, reach = len(shelf.plates), self._detector.neighbour_plates
        around = {
            q
            for p in (view.plates or range(count))
            for q in range(max(0, p - reach), min(count, p + reach + 1))
        }
        return not any(shelf.plate_in_motion(q) for q in around)

    def _on_view_alone(self, view: Sighting) -> None:
        """A view no weight change fits: a product too light for the shelf to weigh is
        decided by the view (:mod:`edge.checkout.view_alone`); anything else was
        touched, not taken, and is only recorded (``view_without_change``)."""
        barcode = view.top[0]
        body: dict[str, Any] = {
            "camera": view.camera,
            "seen_ms": view.ts_ms,
            "plates": list(view.plates) if view.plates else [],
            "delta_g": 0.0,
            "action": view.action,
            "top": _top3(view.scores),
        }
        if not too_light(self._products.get(barcode), self._detector.min_delta_g):
            self.store.record_event(
                "view_without_change", view.ts_ms, view.shelf_id, view.session_token, body
            )
            return
        named = view.session_token
        if not self.open_sessions:  # staff restocking, a closed store: nobody to charge
            self.store.record_event("unattributed_change", view.ts_ms, view.shelf_id, None, body)
            return
        if named is not None and named in self.open_sessions:
            who = Attribution(named, [{"session_token": named}], None)
        else:
            around = ShelfEvent(
                view.shelf_id,
                view.plates or (),
                (0.0,) * len(view.plates or ()),
                view.ts_ms - VIEW_SPAN_MS,
                view.ts_ms + VIEW_SPAN_MS,
                view.ts_ms + VIEW_SPAN_MS,
            )
            who = self.associator.attribute(around, sorted(self.open_sessions))
        body["shoppers"] = who.shoppers[:5]
        body["candidates"] = [
            {"barcode": b, "quantity": 1, "likelihood": 1.0, "confidence": p}
            for b, p in body["top"].items()
        ]
        body["vision_only"] = True
        decision = decide_view_alone(
            view,
            self._inference.min_confidence,
            self.store.cart(who.token) if who.token else {},
        )
        problem = who.problem if who.token is None else decision.problem
        if problem is not None or who.token is None:
            self.store.add_review(view.shelf_id, view.ts_ms, body, problem or "unclear", who.token)
            return
        self.store.change_cart(
            who.token,
            decision.barcode,
            decision.quantity,
            view.ts_ms,
            view.shelf_id,
            {**body, "barcode": decision.barcode, "quantity": abs(decision.quantity)},
        )


def _hyp_json(h: Hypothesis) -> dict[str, object]:
    return {
        "barcode": h.barcode,
        "quantity": h.quantity,
        "likelihood": round(h.likelihood, 4),
        "confidence": round(h.confidence, 4),
    }


def _top3(scores: Mapping[str, float]) -> dict[str, float]:
    """A camera's three best scores, for an event body."""
    top = sorted(scores.items(), key=lambda kv: -kv[1])[:3]
    return {b: round(p, 4) for b, p in top}


def _may_be_two(best: Hypothesis | None) -> bool:
    """Could this event be two products in one grab (see ``_one_of_each``)?"""
    return best is None or best.likelihood < MIN_LIKELIHOOD or best.quantity == 2
