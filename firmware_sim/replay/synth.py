"""Turn a labelled :class:`~firmware_sim.scenario.Case` into a real store's device messages.

``synthesize`` gives every message the shelves, gates and the camera tracker of
the store would send during the case (sorted by send time) and the ground
truth.  Deterministic for the same case (its name and events), store, seed and realism.

Content:

* a Birth of every shelf, both gates and the tracker at t = 0 (seq 0);
* a WeightBatch of every shelf (all its physical plates) every 200 ms
  (12 samples at 60 Hz) from t = 0 to the end, seq 1, 2, ... per shelf, with
  the signal of :mod:`~firmware_sim.replay.loads`, losses and disorder;
* a GateEvent at ``entry_gate``/``exit_gate`` per shopper visit
  (:mod:`~firmware_sim.replay.walk`), carrying the shopper's session token;
* a Positions message of ``tracker`` every ``1 / position_hz`` s.

A ``target_id`` that is not a valid session token (such as ``""``) is
replaced by ``anon-{index}`` (its index in ``case.shoppers``).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from pydantic import ValidationError

from devices.protocol import SAMPLES_PER_BATCH, GateEvent
from firmware_sim.replay.effects import PlateChange, plan_effects
from firmware_sim.replay.loads import initial_loads, render_shelf
from firmware_sim.replay.realism import Realism
from firmware_sim.replay.store import ReplayStore
from firmware_sim.replay.walk import plan_visits
from firmware_sim.replay.wire import (
    BATCH_MS,
    HandModel,
    Message,
    births,
    gate_messages,
    position_messages,
    weight_messages,
)
from firmware_sim.scenario import Case

__all__ = ["Message", "Realism", "Synthesis", "synthesize"]

#: Signals keep running this long after the last shopper left.
TAIL_MS = 1000
#: Shortest replay (an empty case still shows the shelves idle for a while).
MIN_DURATION_MS = 6000

# Independent random streams, so that one part changing leaves the others alone.
_EFFECTS, _LOADS, _VISITS, _POSITIONS, _SHELF = range(5)


@dataclass(frozen=True)
class Synthesis:
    messages: list[Message]  # sorted by t_ms (stable)
    tokens: dict[str, str]  # shopper -> session token used at the gates
    truth: dict[str, dict[str, int]]  # shopper -> barcode -> quantity (case.receipts())
    duration_ms: int
    sample_count: int  # plate samples in the emitted weight messages (duplicates included)
    changes: list[PlateChange]  # settled weight change of each plate per event
    visits: dict[str, tuple[int, int]]  # shopper -> (entry ms, exit ms)
    notes: list[str]


def session_token(shopper: str, index: int) -> str:
    """``shopper`` itself when it is a valid session token, else ``anon-{index}``."""
    try:
        GateEvent(seq=0, ts=0, direction="entry", session_token=shopper)
    except ValidationError:
        return f"anon-{index}"
    return shopper


def _tokens(shoppers: list[str]) -> dict[str, str]:
    tokens: dict[str, str] = {}
    for index, shopper in enumerate(shoppers):
        token = session_token(shopper, index)
        while token in tokens.values():
            token = f"{token}-{index}"
        tokens[shopper] = token
    return tokens


def synthesize(
    case: Case,
    store: ReplayStore,
    store_id: str,
    *,
    seed: int,
    realism: Realism,
    base_ms: int,
    entry_gate: str = "gate-entry",
    exit_gate: str = "gate-exit",
    tracker: str = "tracker-1",
) -> Synthesis:
    """The device messages and ground truth of ``case`` replayed in ``store``."""
    entropy = [seed, zlib.crc32(case.name.encode())]

    def rng(*stream: int) -> np.random.Generator:
        return np.random.default_rng([*entropy, *stream])

    effects = plan_effects(case, store, realism, rng(_EFFECTS))
    visits = plan_visits(
        case.shoppers,
        effects.timings,
        case.visits,
        store,
        rng(_VISITS),
    )
    tokens = _tokens([v.shopper for v in visits])
    end = max([v.exit_ms for v in visits] + [c.end_ms for c in effects.changes], default=0)
    duration = max(MIN_DURATION_MS, end + TAIL_MS)
    duration = -(-duration // BATCH_MS) * BATCH_MS
    samples = duration // BATCH_MS * SAMPLES_PER_BATCH

    messages = births(store_id, store.plate_counts, [entry_gate, exit_gate], tracker, base_ms)
    start = initial_loads(store, rng(_LOADS))
    sample_count = 0
    for index, (shelf_id, _) in enumerate(store.plate_counts.items()):
        shelf_rng = rng(_SHELF, index)
        own = [c for c in effects.changes if c.shelf_id == shelf_id]
        signal = render_shelf(start[shelf_id], own, samples, realism, shelf_rng)
        shelf = weight_messages(store_id, shelf_id, signal, base_ms, realism, shelf_rng)
        messages += shelf.messages
        sample_count += shelf.samples
    messages += gate_messages(store_id, visits, tokens, entry_gate, exit_gate, base_ms)
    messages += position_messages(
        store_id,
        tracker,
        visits,
        tokens,
        duration,
        base_ms,
        realism,
        rng(_POSITIONS),
        hands=HandModel(store, effects.timings) if realism.hands else None,
    )
    messages.sort(key=lambda m: m.t_ms)
    return Synthesis(
        messages=messages,
        tokens=tokens,
        truth=case.receipts(),
        duration_ms=duration,
        sample_count=sample_count,
        changes=effects.changes,
        visits={v.shopper: (v.entry_ms, v.exit_ms) for v in visits},
        notes=effects.notes,
    )
