"""The checkout engine's hands part (a mixin): who made a shelf event when several
shoppers reach into one shelf.

Association (:mod:`edge.checkout.association`) names the hand at the plates; this
part works on what it leaves open: two hands at once (one busy with another change
of that moment, :mod:`edge.checkout.busy_hands`), one change made by several hands
(split by plate, or k units for k hands), and a put-back with several hands near
(the one holding such an item).
"""

from __future__ import annotations

from typing import Any

from edge.checkout.association import TWO_HANDS, Attribution
from edge.checkout.busy_hands import SHELF_WAIT_MS, freed, pair
from edge.checkout.detector import ShelfEvent
from edge.checkout.engine_part import EnginePart, Held
from edge.checkout.inference import MIN_LIKELIHOOD, Hypothesis, clear, infer, joint_likelihood

#: k units of one product for k hands gives way to one product per hand when the
#: plates each hand worked fit that hand's own product this many times better than one
#: unit each of the whole's product (a 92 g and a 106 g item from neighbouring plates
#: weigh about as much as two 104 g ones, but the plates lost 92 g and 106 g).
PLATES_SAY_OTHERWISE = 20.0


class Hands(EnginePart):
    """The engine's several-hands part (a mixin of the checkout engine)."""

    def _attribute(self, event: ShelfEvent, *, final: bool, waited: bool) -> Attribution | None:
        """Who made ``event``; None when it was split between hands and decided in
        parts, or waits for another change of its shelf (``waited``: it did already)."""
        who = self.associator.attribute(event, sorted(self.open_sessions))
        who = self.busy_hands.free_hand(event, who) or who
        if who.problem == TWO_HANDS:
            who = self._pair_with_waiting(event, who) or who
        if (
            who.token is None
            and len(who.touching) > 1
            and self._split_by_hands(event, who.touching, final)
        ):
            return None
        if who.token is None and event.delta_g > 0 and len(who.touching) > 1:
            who = self._who_holds_it(event, who)
        if (
            who.problem == TWO_HANDS
            and not final
            and not waited
            and self._wait_for_shelf(event, who)
        ):
            return None
        return who

    def _wait_for_shelf(self, event: ShelfEvent, who: Attribution) -> bool:
        """Two hands at the plates: wait until the shelf is still (``SHELF_WAIT_MS`` at
        most) for the other changes made at the same moment, settled or settling, whose
        hands may then be known to be busy there (:mod:`edge.checkout.busy_hands`)."""
        if event.device_id not in self.shelves:
            return False
        self._held.append(Held(event, who.token, self.clock_ms() + SHELF_WAIT_MS, shelf_wait=True))
        return True

    def _pair_with_waiting(self, event: ShelfEvent, who: Attribution) -> Attribution | None:
        """Two hands at once at this change and at another one of the shelf waiting for
        it: each hand to the change it worked nearest (:func:`busy_hands.pair`); the
        waiting one then finds its hand by :meth:`BusyHands.free_hand`."""
        waiting = [h.event for h in self._held if h.shelf_wait]
        found = pair(event, who.touching, waiting, self.associator.plates_by_hand)
        if found is None:
            return None
        token, other, theirs = found
        self.busy_hands.note(other, theirs)
        return freed(who, token, {theirs})

    def _who_holds_it(self, event: ShelfEvent, who: Attribution) -> Attribution:
        """Several hands on the plates when something came back: if only one of those
        shoppers holds anything of that weight, it was theirs."""
        holders = [
            token
            for token in who.touching
            if (cart := self.store.cart(token))
            and any(
                h.likelihood >= MIN_LIKELIHOOD
                for h in infer(
                    event.delta_g,
                    self.live.candidates(event, cart),
                    self._inference.max_quantity,
                )
            )
        ]
        if len(holders) != 1:
            return who
        return Attribution(holders[0], who.shoppers, None)

    def _split_by_hands(
        self,
        event: ShelfEvent,
        hands: list[str],
        final: bool,
        *,
        instead_of: Hypothesis | None = None,
    ) -> bool:
        """Two shoppers' hands on neighbouring plates at once, their changes merged into
        one event: each plate goes to the hand nearest it, and when every hand's part is
        a clear product of its own, each part is decided for its shopper.  Otherwise
        nothing is split (the caller goes on with the whole event).  Weight that went
        from one hand's plates to the other's (a put-back and a pick at once) has no
        whole to fall back on: there a part need only be explained, and an unclear one
        is decided (waits for a view, goes to review) as a part of its own.  So is a
        part when the plates deny ``instead_of`` (one unit per hand of one product):
        each part is explained by one unit of a product placed on its plates, and those
        fit the parts :data:`PLATES_SAY_OTHERWISE` times better in all."""
        if len(event.plates) < 2:
            return False
        plates_of = self.associator.plates_by_hand(event, hands)
        if len(plates_of) < 2:
            return False
        whole = self._products.get(instead_of.barcode) if instead_of is not None else None
        if instead_of is not None and whole is None:
            return False
        need = 0.0 if event.moved(self._detector.min_delta_g) else self._inference.min_confidence
        ratio = 1.0
        parts: list[tuple[ShelfEvent, str]] = []
        for token, plates in plates_of.items():
            part = event.part(plates)
            if abs(part.delta_g) < self._detector.min_delta_g:
                return False
            cart = self.store.cart(token) if part.delta_g > 0 else None
            candidates = self.live.candidates(part, cart)
            hypotheses = infer(part.delta_g, candidates, self._inference.max_quantity)
            # placed on the part's own plates (or put there), not only near them: a share
            # of one item lying across two plates can weigh like anything
            bar = self._inference.neighbour_prior
            placed = {p.barcode for p, prior in candidates if prior > bar}
            if whole is not None:
                fit = _own_unit_fit(part, hypotheses, placed)
                if fit is None:
                    return False
                ratio *= fit / max(joint_likelihood(part.delta_g, [whole]), 1e-12)
            elif not _clear_and_placed(next(iter(hypotheses), None), need, placed):
                return False
            parts.append((part, token))
        if whole is not None and ratio < PLATES_SAY_OTHERWISE:
            return False
        for part, token in parts:
            shoppers = [{"session_token": token, "split_from": list(event.plates)}]
            self._on_shelf_event(part, final=final, who=Attribution(token, shoppers, None))
        return True

    def _split_between_hands(
        self, event: ShelfEvent, best: Hypothesis, who: Attribution, body: dict[str, Any]
    ) -> bool:
        """k hands reached into the plates and k units gone: each hand took one.  When
        the hands worked on different plates and each one's plates hold a clear product
        of their own, or the plates' own changes deny one unit of the same product each
        (:data:`PLATES_SAY_OTHERWISE`), that is what each took: two products of about
        the same weight, one per hand, can add up to two units of a third."""
        hands = self.associator.reached(event, who)
        if len(hands) < 2 or best.quantity != len(hands):
            return False
        if self._split_by_hands(event, hands, final=True) or self._split_by_hands(
            event, hands, final=True, instead_of=best
        ):
            return True
        for token in hands:
            self.store.change_cart(
                token,
                best.barcode,
                1,
                event.end_ms,
                event.device_id,
                {**body, "barcode": best.barcode, "quantity": 1, "split_between": hands},
            )
            self.latencies.pick_to_cart(self.clock_ms() - event.settled_ms)
        return True


def _clear_and_placed(best: Hypothesis | None, need: float, placed: set[str]) -> bool:
    return clear(best, need) and best.barcode in placed


def _own_unit_fit(part: ShelfEvent, hypotheses: list[Hypothesis], placed: set[str]) -> float | None:
    """How well the best single unit of a product placed on the part's plates fits a pick
    from them; None when no such unit explains it (or it is no pick)."""
    if part.delta_g >= 0:
        return None
    fits = [
        h.likelihood
        for h in hypotheses
        if h.quantity == 1 and h.barcode in placed and h.likelihood >= MIN_LIKELIHOOD
    ]
    return max(fits, default=None)
