"""Synthesised device messages of AiFi cases: weights, counts, order, faults, determinism."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from itertools import pairwise

import numpy as np
import pytest

from devices.protocol import (
    Birth,
    GateEvent,
    MessageKind,
    Positions,
    WeightBatch,
    decode,
    parse_topic,
)
from firmware_sim.aifi.cases import load_cases
from firmware_sim.aifi.dataset import find_dataset
from firmware_sim.aifi.layout import AifiStore, load_store
from firmware_sim.replay.loads import first_sample_at
from firmware_sim.replay.synth import Realism, Synthesis, synthesize
from firmware_sim.scenario import Case, CaseEvent

DATASET = find_dataset()
pytestmark = pytest.mark.skipif(DATASET is None, reason="AiFi dataset not found")

STORE_ID = "aifi-test"
BASE_MS = 1_700_000_000_000


@pytest.fixture(scope="module")
def store() -> AifiStore:
    assert DATASET is not None
    return load_store(DATASET)


@pytest.fixture(scope="module")
def cases() -> dict[str, Case]:
    assert DATASET is not None
    return {c.name: c for c in load_cases(DATASET / "ground_truth" / "dev.json")}


def _run(case: Case, store: AifiStore, realism: Realism, seed: int = 7) -> Synthesis:
    return synthesize(case, store, STORE_ID, seed=seed, realism=realism, base_ms=BASE_MS)


def _signals(syn: Synthesis) -> dict[str, np.ndarray]:
    """Each shelf's samples (plates x samples), rebuilt from its weight messages by seq."""
    batches: dict[str, dict[int, list[list[float]]]] = defaultdict(dict)
    for m in syn.messages:
        _, device, kind, _ = parse_topic(m.topic)
        if kind is MessageKind.WEIGHT:
            data = json.loads(m.payload)
            batches[device][data["seq"]] = data["samples"]
    return {
        shelf: np.concatenate([np.array(by_seq[s]) for s in sorted(by_seq)], axis=1)
        for shelf, by_seq in batches.items()
    }


def _event_weight(case: Case, store: AifiStore) -> float:
    sign = {"pick": -1.0, "putback": 1.0}
    return sum(
        sign[e.kind] * e.quantity * store.planogram.product(e.barcode).unit_weight_g
        for e in case.events
    )


@pytest.mark.parametrize("name", ["BASELINE-6", "cps-test-12", "cps-test-23"])
def test_settled_changes_match_the_truth(
    name: str, cases: dict[str, Case], store: AifiStore
) -> None:
    case = cases[name]
    syn = _run(case, store, Realism.off())
    signals = _signals(syn)
    assert set(signals) == set(store.shelf_ids)
    total = sum(float(s[:, -1].sum() - s[:, 0].sum()) for s in signals.values())
    assert total == pytest.approx(_event_weight(case, store), abs=0.1 * len(syn.changes) + 0.5)
    truth_g = sum(
        q * store.planogram.product(b).unit_weight_g
        for receipt in syn.truth.values()
        for b, q in receipt.items()
    )
    if name != "cps-test-23":  # there the shopper puts back more units than they picked
        assert -total == pytest.approx(truth_g, abs=0.1 * len(syn.changes) + 0.5)
    # every plate steps exactly at its events' t_ms, by the sum of their changes
    for shelf, signal in signals.items():
        for plate in range(signal.shape[0]):
            steps = np.diff(signal[plate])
            expected: dict[int, float] = defaultdict(float)
            for c in syn.changes:
                if (c.shelf_id, c.plate) == (shelf, plate):
                    expected[first_sample_at(c.end_ms) - 1] += c.delta_g
            moved = {int(i): float(steps[i]) for i in np.flatnonzero(np.abs(steps) > 0.05)}
            assert set(moved) == {k for k, v in expected.items() if abs(v) > 0.1}, (shelf, plate)
            for k, step in moved.items():  # readings carry 0.1 g: a step rounds either way
                assert step == pytest.approx(expected[k], abs=0.11), (shelf, plate, k)


def test_message_counts_and_seq(cases: dict[str, Case], store: AifiStore) -> None:
    syn = _run(cases["cps-test-10"], store, Realism.off())
    assert [m.t_ms for m in syn.messages] == sorted(m.t_ms for m in syn.messages)
    seconds = syn.duration_ms / 1000
    per_device: dict[str, list[int]] = defaultdict(list)
    kinds: Counter[MessageKind] = Counter()
    shelves: Counter[str] = Counter()
    for m in syn.messages:
        inbound = decode(m.topic, m.payload)
        assert inbound.store_id == STORE_ID
        kinds[inbound.kind] += 1
        per_device[inbound.device_id].append(inbound.message.seq)
        if inbound.kind is MessageKind.WEIGHT:
            assert isinstance(inbound.message, WeightBatch)
            shelves[inbound.device_id] += 1
            assert inbound.message.sample_count == 12
            assert inbound.message.rate_hz == 60
            assert len(inbound.message.samples) == store.plate_counts[inbound.device_id]
        elif inbound.kind is MessageKind.BIRTH:
            assert m.t_ms == 0
            assert isinstance(inbound.message, Birth)
    assert kinds[MessageKind.BIRTH] == 30 + 3
    assert set(shelves.values()) == {int(seconds * 5)}
    assert len(shelves) == 30
    assert kinds[MessageKind.POSITIONS] == int(seconds * 10)
    assert kinds[MessageKind.GATE] == 2 * len(syn.tokens)
    for device, seqs in per_device.items():
        assert seqs == list(range(len(seqs))), device
    assert syn.sample_count == 12 * (syn.duration_ms // 200) * 306


def test_gates_and_tokens(cases: dict[str, Case], store: AifiStore) -> None:
    case = cases["cps-test-11"]
    syn = _run(case, store, Realism())
    gates = [
        (m.t_ms, decode(m.topic, m.payload))
        for m in syn.messages
        if decode(m.topic, m.payload).kind is MessageKind.GATE
    ]
    assert syn.tokens == {s: s for s in case.shoppers}
    for shopper, token in syn.tokens.items():
        own = [
            (t, i)
            for t, i in gates
            if isinstance(i.message, GateEvent) and i.message.session_token == token
        ]
        (t_in, entry), (t_out, exit_) = own
        assert (entry.device_id, exit_.device_id) == ("gate-entry", "gate-exit")
        assert entry.message.ts == BASE_MS + t_in
        last = max(e.t_ms for e in case.events if e.shopper == shopper)
        first = min(e.t_ms for e in case.events if e.shopper == shopper)
        assert t_in == max(0, first - 5000)
        assert last + 2500 <= t_out <= last + 4000
        assert syn.visits[shopper] == (t_in, t_out)
    assert syn.truth == case.receipts()


def test_anonymous_shopper_still_walks_through(cases: dict[str, Case], store: AifiStore) -> None:
    syn = _run(cases["BASELINE-19"], store, Realism())
    assert syn.tokens == {"": "anon-0"}
    assert syn.truth == {"": {}}
    assert syn.changes == []
    gates = [decode(m.topic, m.payload).message for m in syn.messages if "/event/gate" in m.topic]
    assert [(g.direction, g.session_token) for g in gates if isinstance(g, GateEvent)] == [
        ("entry", "anon-0"),
        ("exit", "anon-0"),
    ]


def test_empty_case(cases: dict[str, Case], store: AifiStore) -> None:
    syn = _run(cases["cps-test-3"], store, Realism())
    assert syn.tokens == {}
    assert syn.truth == {}
    assert syn.duration_ms >= 6000
    assert all("/event/gate" not in m.topic for m in syn.messages)


def test_positions_follow_the_shopper(cases: dict[str, Case], store: AifiStore) -> None:
    case = cases["cps-test-4"]
    syn = _run(case, store, Realism.off())
    frames: dict[int, Positions] = {}
    for m in syn.messages:
        inbound = decode(m.topic, m.payload)
        if inbound.kind is MessageKind.POSITIONS:
            assert isinstance(inbound.message, Positions)
            frames[m.t_ms] = inbound.message
    (token,) = syn.tokens.values()
    entry, exit_ = syn.visits[case.shoppers[0]]
    for t_ms, frame in frames.items():
        present = entry <= t_ms < exit_
        assert len(frame.positions) == int(present)
        if present:
            (p,) = frame.positions
            assert p.session_token == token
            assert p.track_id == "track-1"
    for ev in case.events:
        stand = np.mean([store.stand_xy(ev.shelf_id, p) for p in ev.plates], axis=0)
        for t_ms in (ev.t_ms - 1000, ev.t_ms, ev.t_ms + 1000):
            (p,) = frames[t_ms - t_ms % 100].positions
            assert np.hypot(p.x - stand[0], p.y - stand[1]) < 0.15, (ev, t_ms)
    first, last = (
        frames[entry - entry % 100 + 100].positions[0],
        frames[exit_ - exit_ % 100].positions[0],
    )
    for p in (first, last):
        assert np.hypot(p.x - store.entrance_xy[0], p.y - store.entrance_xy[1]) < 0.3


def test_faults_at_about_the_configured_rates(cases: dict[str, Case], store: AifiStore) -> None:
    syn = _run(cases["cps-test-8"], store, Realism(), seed=3)
    sent: dict[str, list[int]] = defaultdict(list)
    for m in syn.messages:
        if "/telemetry/weight" in m.topic:
            sent[m.topic].append(json.loads(m.payload)["seq"])
    batches = syn.duration_ms // 200
    lost = dup = swapped = 0
    for seqs in sent.values():
        lost += batches - len(set(seqs))
        dup += len(seqs) - len(set(seqs))
        swapped += sum(1 for a, b in pairwise(seqs) if b < a)
    total = batches * len(sent)
    assert 0.006 < lost / total < 0.014
    assert 0.0015 < dup / total < 0.009
    assert 0.0015 < swapped / total < 0.009


def test_noise_and_drift_stay_in_bounds(cases: dict[str, Case], store: AifiStore) -> None:
    case = cases["cps-test-5"]
    syn = _run(case, store, Realism.off())
    clean = _signals(syn)
    noisy = _signals(_run(case, store, Realism(loss=0.0, disorder=0.0, bump_g=(0.0, 0.0))))
    touched = {c.shelf_id for c in syn.changes}
    assert touched == {"g3-s4"}
    for shelf in set(clean) - touched:
        diff = noisy[shelf] - clean[shelf]
        assert np.abs(diff).max() < 20.0 + 6 * 3.0  # drift + noise
        assert np.abs(diff).max() > 5.0
        assert 3.0 < np.std(np.diff(diff, axis=1)) < 6.0  # sample-to-sample: noise only
    # items vary around the unit weight (sd 2 % or 2 g): the change differs a little
    diff = noisy["g3-s4"] - clean["g3-s4"]
    assert np.abs(diff).max() < 20.0 + 6 * 3.0 + 4 * 2.8


def test_hand_transient_wobbles_before_the_event(cases: dict[str, Case], store: AifiStore) -> None:
    case = cases["cps-test-4"]
    syn = _run(case, store, Realism(noise_sd_g=0.0, drift_max_g=0.0, loss=0.0, disorder=0.0))
    signals = _signals(syn)
    for change in syn.changes:
        signal = signals[change.shelf_id][change.plate]
        begin, end = first_sample_at(change.start_ms), first_sample_at(change.end_ms)
        assert 0.3 <= (change.end_ms - change.start_ms) / 1000 <= 2.0
        before, after = signal[begin - 1], signal[end]
        assert after - before == pytest.approx(change.delta_g, abs=0.2)
        assert np.abs(signal[begin:end] - before).max() > 5.0


def test_same_seed_same_bytes(cases: dict[str, Case], store: AifiStore) -> None:
    case = cases["TEAM-PEI-JD-1"]
    a, b = _run(case, store, Realism(), seed=11), _run(case, store, Realism(), seed=11)
    assert a.messages == b.messages
    c = _run(case, store, Realism(), seed=12)
    assert [m.payload for m in a.messages] != [m.payload for m in c.messages]


def test_multi_plate_split_and_handoff(store: AifiStore) -> None:
    case = Case(
        name="hand-made",
        shoppers=("alice", "bob"),
        events=(
            CaseEvent(8000, "alice", "pick", "041508922487", 2, "g1-s6", (5, 6, 7), hold_ms=1500),
            CaseEvent(12000, "alice", "handoff", "041508922487", 1, to_shopper="bob"),
            CaseEvent(15000, "alice", "putback", "041508922487", 1, "g1-s6", (5,)),
        ),
    )
    syn = _run(case, store, Realism.off())
    picks = [c for c in syn.changes if c.delta_g < 0]
    assert {c.plate for c in picks} == {5, 6, 7}
    assert sum(c.delta_g for c in picks) == pytest.approx(-2 * 1064.0)
    assert all(c.end_ms - c.start_ms == 1700 for c in picks)
    assert syn.truth == {"alice": {}, "bob": {"041508922487": 1}}
    assert syn.visits["bob"][1] > syn.visits["bob"][0]
