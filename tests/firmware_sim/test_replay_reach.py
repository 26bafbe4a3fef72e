"""One shopper, one place at a time: label times a shopper could not keep are moved."""

from __future__ import annotations

import numpy as np
import pytest

from devices.protocol import MessageKind, Positions, decode
from firmware_sim.aifi.cases import load_cases
from firmware_sim.aifi.dataset import find_dataset
from firmware_sim.aifi.layout import AifiStore, load_store
from firmware_sim.replay.reach import REACH_M, reachable
from firmware_sim.replay.synth import Realism, synthesize
from firmware_sim.replay.walk import RUN_M_S
from firmware_sim.scenario import Case, CaseEvent

DATASET = find_dataset()
pytestmark = pytest.mark.skipif(DATASET is None, reason="AiFi dataset not found")

CONTACT_MS = 2000
WATER = "041508922487"  # on g1-s6
TWINKIES = "888109010102"  # on g4-s1


@pytest.fixture(scope="module")
def store() -> AifiStore:
    assert DATASET is not None
    return load_store(DATASET)


def _stand(store: AifiStore, shelf: str, plates: tuple[int, ...]) -> np.ndarray:
    return np.asarray(np.mean([store.stand_xy(shelf, p) for p in plates], axis=0))


def _far_apart(store: AifiStore) -> float:
    return float(np.hypot(*(_stand(store, "g1-s6", (5,)) - _stand(store, "g4-s1", (1,)))))


def test_one_shopper_at_two_far_shelves_at_once_is_moved(store: AifiStore) -> None:
    dist = _far_apart(store)
    assert dist > REACH_M
    case = Case(
        "two-places",
        ("ann",),
        (
            CaseEvent(8000, "ann", "pick", WATER, 1, "g1-s6", (5,)),
            CaseEvent(8000, "ann", "pick", TWINKIES, 1, "g4-s1", (1,), hold_ms=500),
            CaseEvent(9000, "ann", "putback", TWINKIES, 1, "g4-s1", (1,)),
        ),
    )
    moved, notes = reachable(case, store, CONTACT_MS)
    times = [ev.t_ms for ev in moved.events]
    assert times[0] == 8000
    assert times[1] >= round(8000 + dist / RUN_M_S * 1000 + 500 + CONTACT_MS)
    # the put-back at the same spot keeps its place after the pick, not before it
    assert times[2] >= times[1]
    assert [ev.kind for ev in moved.events] == ["pick", "pick", "putback"]
    assert len(notes) == 2
    assert "ann's pick of 888109010102 at g4-s1 moved from 8000 ms" in notes[0]


def test_what_can_be_done_is_left_as_labelled(store: AifiStore) -> None:
    case = Case(
        "possible",
        ("ann", "bob"),
        (
            # two shoppers at two far shelves at once
            CaseEvent(8000, "ann", "pick", WATER, 1, "g1-s6", (5,)),
            CaseEvent(8000, "bob", "pick", TWINKIES, 1, "g4-s1", (1,)),
            # one shopper, both hands, neighbouring plates
            CaseEvent(20000, "ann", "pick", WATER, 1, "g1-s6", (6,)),
            CaseEvent(20000, "ann", "pick", WATER, 1, "g1-s6", (7,)),
            # one shopper with time enough to walk over
            CaseEvent(40000, "ann", "pick", TWINKIES, 1, "g4-s1", (1,)),
        ),
    )
    same, notes = reachable(case, store, CONTACT_MS)
    assert notes == []
    assert same is case


def test_moved_event_finds_its_shopper_at_the_shelf(store: AifiStore) -> None:
    """Replayed as labelled, the shelf changes while the shopper is metres away; moved, the
    shopper stands at it while the hand is on it."""
    case = Case(
        "two-places",
        ("ann",),
        (
            CaseEvent(8000, "ann", "pick", WATER, 1, "g1-s6", (5,)),
            CaseEvent(8000, "ann", "pick", TWINKIES, 1, "g4-s1", (1,)),
        ),
    )
    stand = _stand(store, "g4-s1", (1,))

    def distance_while_touching(c: Case) -> float:
        syn = synthesize(c, store, "reach", seed=3, realism=Realism.off(), base_ms=0)
        (change,) = [ch for ch in syn.changes if ch.shelf_id == "g4-s1"]
        frames = {}
        for m in syn.messages:
            inbound = decode(m.topic, m.payload)
            if inbound.kind is MessageKind.POSITIONS:
                assert isinstance(inbound.message, Positions)
                frames[m.t_ms] = inbound.message
        worst = 0.0
        for t in range(change.start_ms - change.start_ms % 100 + 100, change.end_ms, 100):
            (p,) = frames[t].positions
            worst = max(worst, float(np.hypot(p.x - stand[0], p.y - stand[1])))
        return worst

    assert distance_while_touching(case) > REACH_M
    moved, _ = reachable(case, store, round(Realism.off().transient_s[1] * 1000))
    assert distance_while_touching(moved) < 0.3


def test_given_visits_last_past_a_moved_event(store: AifiStore) -> None:
    case = Case(
        "visits",
        ("ann",),
        (
            CaseEvent(8000, "ann", "pick", WATER, 1, "g1-s6", (5,)),
            CaseEvent(8000, "ann", "pick", TWINKIES, 1, "g4-s1", (1,)),
        ),
        visits={"ann": (1000, 10000)},
    )
    moved, _ = reachable(case, store, CONTACT_MS)
    entry, exit_ = moved.visits["ann"]
    assert entry == 1000
    assert exit_ > max(ev.t_ms for ev in moved.events)


def test_dev_labels_moved_only_where_a_shopper_was_elsewhere(store: AifiStore) -> None:
    assert DATASET is not None
    moved: dict[str, int] = {}
    for case in load_cases(DATASET / "ground_truth" / "dev.json"):
        _, notes = reachable(case, store, CONTACT_MS)
        if notes:
            moved[case.name] = len(notes)
    # cps-test-12 labels one shopper at gondolas 4 and 2 in the same second ("10:03");
    # BASELINE-25 has one shopper at three gondolas 2 s apart
    assert moved == {"cps-test-12": 1, "BASELINE-25": 3}


def test_a_hand_off_after_a_moved_pick_keeps_its_place_after_it(store: AifiStore) -> None:
    """A hand-off has no shelf; it keeps its label order after the giver's moved pick."""
    case = Case(
        "hand-off",
        ("ann", "bob"),
        (
            CaseEvent(8000, "ann", "pick", WATER, 1, "g1-s6", (5,)),
            CaseEvent(8000, "ann", "pick", TWINKIES, 1, "g4-s1", (1,)),
            CaseEvent(9000, "ann", "handoff", TWINKIES, 1, to_shopper="bob"),
        ),
    )
    moved, notes = reachable(case, store, CONTACT_MS)
    assert [ev.kind for ev in moved.events] == ["pick", "pick", "handoff"]
    pick, handoff = moved.events[1], moved.events[2]
    assert pick.barcode == TWINKIES
    assert pick.t_ms > 8000
    assert handoff.t_ms == pick.t_ms
    assert len(notes) == 2
