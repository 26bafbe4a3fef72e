"""Who made a shelf event: the hand on the plates, else the nearest body, else the only one.

Uses the positions that camera trackers report (``PositionBook``); with
several candidates equally plausible it names none and says why, so the
event goes to review instead of into the wrong cart.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from devices.layout import Planogram
from edge.checkout.detector import ShelfEvent
from edge.checkout.positions import PositionBook, distance
from edge.config import AssociationConfig

#: A hand this near the changed plates (3-D) may have made the change ...
HAND_REACH_M = 0.35
#: ... and a second hand this much farther away still leaves doubt.
HAND_MARGIN_M = 0.08
#: A hand whose nearest frame came this close to the plates touched them.
HAND_TOUCH_M = 0.1
#: A hand whose frames nearest the changed plates stayed this far away was elsewhere.
HAND_ELSEWHERE_M = 0.8
#: Hand positions this long before and after the change count.
HAND_SLACK_MS = 300
#: A hand with this many frames within reach of the plates while they changed reached
#: into them, however briefly (a quick grab beside a longer one, merged into one event).
CONTACT_FRAMES = 2
#: Changes split between at most this many hands (one plate each, then the rest).
MAX_SPLIT_HANDS = 4
#: The problem named when more than one hand was at the changed plates.
TWO_HANDS = "two hands on the shelf"

PlateKey = tuple[str, int]
PointT = TypeVar("PointT", tuple[float, float], tuple[float, float, float])


@dataclass(frozen=True, slots=True)
class Attribution:
    token: str | None
    shoppers: list[dict[str, Any]]  # the ranked candidates, for the review queue
    problem: str | None  # why nobody could be chosen

    @property
    def touching(self) -> list[str]:
        """Shoppers whose hands were at the changed plates (within reach, on average)."""
        return [s["session_token"] for s in self.shoppers if s.get("hand_m", 99) <= HAND_REACH_M]


def _points(table: Mapping[PlateKey, PointT], event: ShelfEvent) -> list[PointT]:
    """Where ``event``'s plates are, those with a known place."""
    return [table[(event.device_id, p)] for p in event.plates if (event.device_id, p) in table]


def _centre(points: Sequence[tuple[float, ...]]) -> tuple[float, ...]:
    return tuple(sum(p[i] for p in points) / len(points) for i in range(len(points[0])))


class Associator:
    def __init__(
        self, planogram: Planogram, positions: PositionBook, cfg: AssociationConfig
    ) -> None:
        self.positions = positions
        self._cfg = cfg
        self.plate_xy: dict[PlateKey, tuple[float, float]] = {}
        self._plate_xyz: dict[PlateKey, tuple[float, float, float]] = {}
        for shelf in planogram.shelves:
            for plate in shelf.plates:
                if plate.x is None or plate.y is None:
                    continue
                self.plate_xy[(shelf.device_id, plate.plate)] = (plate.x, plate.y)
                if plate.z is not None:
                    self._plate_xyz[(shelf.device_id, plate.plate)] = (plate.x, plate.y, plate.z)

    def attribute(self, event: ShelfEvent, sessions: list[str]) -> Attribution:
        if not sessions:
            return Attribution(None, [], "no shopper in the store")
        if len(sessions) == 1:  # whatever the tracker says: nobody else can have done it
            return Attribution(sessions[0], [{"session_token": sessions[0]}], None)
        ranked = self._hand_ranks(event, sessions)
        by_hand = self._by_hand(ranked)
        if by_hand is not None:
            return by_hand
        # Nobody's hand was seen at these plates.  One seen clearly elsewhere the whole
        # time (on another shelf) did not make the change, however near the body stood.
        elsewhere = {t for mean, _near, t in ranked if mean > HAND_ELSEWHERE_M}
        if elsewhere and elsewhere == set(sessions):
            return Attribution(
                None,
                [{"session_token": t, "hand_m": round(mean, 2)} for mean, _n, t in ranked],
                "every shopper's hand was elsewhere",
            )
        by_body = self._by_body(event, [t for t in sessions if t not in elsewhere])
        if by_body is not None:
            return by_body
        return Attribution(
            None,
            [{"session_token": t} for t in sessions],
            "several shoppers in the store and no positions",
        )

    def _hand_ranks(self, event: ShelfEvent, sessions: list[str]) -> list[tuple[float, float, str]]:
        """(mean, nearest, token) of the hands seen while the plates changed, nearest
        first; empty when the tracker reports no hands."""
        spot = self._hand_spot(event)
        if spot is None:
            return []
        ranked: list[tuple[float, float, str]] = []
        for token in sessions:
            d = self._hand_distance(token, event, spot)
            if d is not None:
                ranked.append((d[0], d[1], token))
        ranked.sort()
        return ranked

    def _by_hand(self, ranked: list[tuple[float, float, str]]) -> Attribution | None:
        """The shopper whose hand was on these plates while they changed, if the tracker
        reports hands and exactly one hand was clearly there."""
        if not ranked or ranked[0][0] > HAND_REACH_M:
            return None  # no hand seen there: fall back to where the bodies were
        shoppers: list[dict[str, Any]] = [
            {
                "session_token": t,
                "hand_m": round(mean, 2),
                "touching": mean <= HAND_REACH_M and near <= HAND_TOUCH_M,
            }
            for mean, near, t in ranked
        ]
        touching = [t for mean, near, t in ranked if mean <= HAND_REACH_M and near <= HAND_TOUCH_M]
        if len(touching) == 1:  # one hand on the plates, the others only near them
            return Attribution(touching[0], shoppers, None)
        if len(touching) > 1 or (len(ranked) > 1 and ranked[1][0] - ranked[0][0] < HAND_MARGIN_M):
            return Attribution(None, shoppers, TWO_HANDS)
        return Attribution(ranked[0][2], shoppers, None)

    def reached(self, event: ShelfEvent, who: Attribution) -> list[str]:
        """The shoppers whose hands reached into the changed plates while they changed:
        those within reach on average (``who.touching``), and those seen there for at
        least ``CONTACT_FRAMES`` frames, however short a part of the change that was."""
        hands = list(who.touching)
        for s in who.shoppers:
            token = s["session_token"]
            if token in hands or "hand_m" not in s:
                continue
            contact = self._contact(event, token)
            if contact is not None and contact[1] >= CONTACT_FRAMES:
                hands.append(token)
        return hands

    def plates_by_hand(self, event: ShelfEvent, tokens: list[str]) -> dict[str, list[int]]:
        """Each plate of ``event`` to the hand of ``tokens`` that worked nearest it while
        the plates changed (where each hand was while within reach of the plates,
        :meth:`PositionBook.hand_contact`); empty without hand positions there."""
        spots = {
            p: self._plate_xyz[(event.device_id, p)]
            for p in event.plates
            if (event.device_id, p) in self._plate_xyz
        }
        if len(spots) != len(event.plates):
            return {}
        contacts: dict[str, tuple[float, float, float]] = {}
        for token in tokens:
            contact = self._contact(event, token)
            if contact is not None:
                contacts[token] = contact[0]
        if not contacts:
            return {}
        owner: dict[int, str] = {}
        hands = sorted(contacts)
        if len(hands) <= min(len(spots), MAX_SPLIT_HANDS):
            # Every hand that reached in made part of the change: one plate each first,
            # the nearest way round in all (hands a plate apart, each near both plates).
            seat = min(
                itertools.permutations(sorted(spots), len(hands)),
                key=lambda plates: sum(
                    math.dist(contacts[t], spots[p]) for t, p in zip(hands, plates, strict=True)
                ),
            )
            owner = dict(zip(seat, hands, strict=True))
        plates_of: dict[str, list[int]] = {}
        for plate, spot in spots.items():
            token = owner.get(plate) or min(
                contacts, key=lambda t: (math.dist(contacts[t], spot), t)
            )
            plates_of.setdefault(token, []).append(plate)
        return plates_of

    def _contact(
        self, event: ShelfEvent, token: str
    ) -> tuple[tuple[float, float, float], int] | None:
        """Where ``token``'s hand worked within reach of ``event``'s plates while they
        changed, and for how many frames."""
        spot = self._hand_spot(event)
        if spot is None:
            return None
        return self.positions.hand_contact(
            token,
            event.start_ms - HAND_SLACK_MS,
            event.settled_ms + HAND_SLACK_MS,
            spot,
            HAND_REACH_M,
        )

    def _hand_spot(self, event: ShelfEvent) -> tuple[float, float, float] | None:
        """The centre (3-D) of ``event``'s plates, where hands are measured from; None
        without plate heights or hand positions."""
        spots = _points(self._plate_xyz, event)
        if not spots or not self.positions.tracking_hands:
            return None
        x, y, z = _centre(spots)
        return x, y, z

    def _hand_distance(
        self, token: str, event: ShelfEvent, spot: tuple[float, float, float]
    ) -> tuple[float, float] | None:
        """(mean, nearest) distance of ``token``'s hand from ``spot`` while ``event``'s
        plates changed; a touch shorter than a tracker frame: a little wider."""
        d = self.positions.hand_distance(token, event.start_ms, event.settled_ms, spot)
        if d is None:
            d = self.positions.hand_distance(
                token, event.start_ms - HAND_SLACK_MS, event.settled_ms + HAND_SLACK_MS, spot
            )
        return d

    def _by_body(self, event: ShelfEvent, sessions: list[str]) -> Attribution | None:
        """The shopper standing clearly nearest the changed plates."""
        spots = _points(self.plate_xy, event)
        if not spots or not self.positions.tracking:
            return None
        x, y = _centre(spots)
        cfg = self._cfg
        ranked: list[tuple[float, str]] = []
        for token in sessions:
            where = self.positions.mean_position(
                token, event.start_ms - cfg.window_ms, event.end_ms + cfg.window_ms
            )
            if where is not None:
                ranked.append((distance(where, (x, y)), token))
        if not ranked:
            return None
        ranked.sort()
        shoppers = [{"session_token": t, "distance_m": round(d, 2)} for d, t in ranked]
        best_d, best = ranked[0]
        if best_d > cfg.reach_m:
            return Attribution(None, shoppers, "no tracked shopper within reach")
        if len(ranked) > 1 and ranked[1][0] - best_d < cfg.margin_m:
            return Attribution(None, shoppers, "two shoppers equally near")
        return Attribution(best, shoppers, None)
