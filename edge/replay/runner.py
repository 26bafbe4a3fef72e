"""Drive synthesised device messages through the gateway and score its receipts.

Each case gets a fresh gateway (its own SQLite file) whose Dispatcher,
handlers and CheckoutEngine are exactly those of live operation; only the
MQTT socket is skipped.  In ``fast`` mode the engine's clock is the replay's
clock, so a case runs as fast as the CPU allows; in ``realtime`` mode messages
are handed over at their wall-clock time and the engine runs on real time.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from devices.protocol import ReceiptMessage
from edge.app import Gateway
from edge.config import GatewayConfig, parse_config
from firmware_sim.replay.reach import reachable
from firmware_sim.replay.score import score
from firmware_sim.replay.store import ReplayStore
from firmware_sim.replay.synth import Realism, synthesize
from firmware_sim.scenario import Case

if TYPE_CHECKING:
    from edge.replay.product_camera import ProductCamera

STORE_ID = "aifi-nanostore"
TRACKER = "tracker-1"
#: Time the engine gets after the last message of a case to finish its receipts.
TAIL_MS = 5_000
#: Epoch of the first case; each case starts an hour after the previous one.
BASE_MS = 1_700_000_000_000


def replay_config(db_path: Path, overrides: dict[str, Any] | None = None) -> GatewayConfig:
    data: dict[str, Any] = {
        "store_id": STORE_ID,
        "planogram": "unused.yaml",  # the replay hands the planogram object over
        "gates": [
            {"device_id": "gate-entry", "direction": "entry"},
            {"device_id": "gate-exit", "direction": "exit"},
        ],
        "trackers": [TRACKER],
        "database": {"path": str(db_path)},
        # recorded shoppers carry the dataset's session ids, not our signed check-ins,
        # and nobody's card is charged in a replay
        "shoppers": {"verify_checkin": False, "payments": {"provider": "none"}},
    }
    data.update(overrides or {})
    return parse_config(data, base_dir=db_path.parent, env={}, source="replay")


@dataclass
class CaseResult:
    dataset: str
    truth: dict[str, dict[str, int]]
    issued: dict[str, dict[str, int]]
    review: int
    weight_events: int
    samples: int


@dataclass
class ReplayResult:
    cases: list[CaseResult] = field(default_factory=list)
    pick_to_cart_ms: list[int] = field(default_factory=list)
    exit_to_receipt_ms: list[int] = field(default_factory=list)
    busy_s: float = 0.0  # time spent inside the gateway code
    #: With a simulated product camera (``--vision``): what it saw and what the engine did.
    vision: dict[str, int] | None = None
    #: Label times no shopper could keep, and where the replay put them
    #: (:mod:`firmware_sim.replay.reach`).
    retimed: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        s = score([(c.dataset, c.truth, c.issued) for c in self.cases])
        events = sum(c.weight_events for c in self.cases)
        reviews = sum(c.review for c in self.cases)
        samples = sum(c.samples for c in self.cases)
        return {
            "cases": len(self.cases),
            "items_gt": s.items_gt,
            "precision": round(s.precision, 4),
            "recall": round(s.recall, 4),
            "f1": round(s.f1, 4),
            "exact_match_rate": round(s.exact_match_rate, 4),
            "review_rate": round(reviews / events, 4) if events else 0.0,
            "review_items": reviews,
            "weight_events": events,
            "pick_to_cart_p99_ms": _p99(self.pick_to_cart_ms),
            "exit_to_receipt_p99_ms": _p99(self.exit_to_receipt_ms),
            "samples_per_s": round(samples / self.busy_s) if self.busy_s else None,
            "retimed_events": len(self.retimed),
            "per_case": [
                {"dataset": pc["dataset"], "f1": round(pc["f1"], 4), "exact": pc["exact"]}
                for pc in s.per_case
            ],
            **({"vision": dict(self.vision)} if self.vision is not None else {}),
        }

    def receipts_out(self) -> dict[str, Any]:
        return {
            "cases": [
                {"dataset": c.dataset, "receipts": c.issued, "review": c.review} for c in self.cases
            ]
        }


def _p99(values: Sequence[int]) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def replay(
    cases: Sequence[Case],
    store: ReplayStore,
    *,
    seed: int = 0,
    realism: Realism | None = None,
    speed: Literal["fast", "realtime"] = "fast",
    overrides: dict[str, Any] | None = None,
    camera: ProductCamera | None = None,
) -> ReplayResult:
    """``camera``: also a simulated product camera (see :mod:`edge.replay.product_camera`)."""
    result = ReplayResult()
    if camera is not None:
        camera.reset()
        result.vision = {}
        overrides = {"trackers": [TRACKER, camera.device_id], **(overrides or {})}
    for index, case in enumerate(cases):
        result.cases.append(
            _replay_case(
                index, case, store, seed, realism or Realism(), speed, overrides, result, camera
            )
        )
    if camera is not None and result.vision is not None:
        result.vision.update(asdict(camera.stats))
    return result


def _replay_case(
    index: int,
    case: Case,
    store: ReplayStore,
    seed: int,
    realism: Realism,
    speed: Literal["fast", "realtime"],
    overrides: dict[str, Any] | None,
    result: ReplayResult,
    camera: ProductCamera | None = None,
) -> CaseResult:
    case, retimed = reachable(case, store, round(realism.transient_s[1] * 1000))
    result.retimed.extend(retimed)
    base_ms = BASE_MS + index * 3_600_000
    if speed == "realtime":
        base_ms = int(time.time() * 1000) + 500
    syn = synthesize(
        case,
        store,
        STORE_ID,
        seed=seed * 1000 + index,
        realism=realism,
        base_ms=base_ms,
        tracker=TRACKER,
    )
    messages = syn.messages
    if camera is not None:
        from edge.replay.product_camera import merge  # noqa: PLC0415

        names = {p.barcode: p.name for p in store.planogram.products}
        seen = camera.messages(case, syn, STORE_ID, base_ms, names, seed * 1000 + index)
        messages = merge(messages, seen)
    now = [base_ms]

    def clock() -> int:
        return now[0] if speed == "fast" else int(time.time() * 1000)

    receipts: list[ReceiptMessage] = []
    with tempfile.TemporaryDirectory(prefix="storeedge-replay-") as tmp:
        gateway = Gateway(
            replay_config(Path(tmp) / "gateway.db", overrides),
            planogram=store.planogram,
            clock_ms=clock,
        )
        gateway.add_receipt_listener(receipts.append)
        dispatch, engine = gateway.dispatcher.dispatch, gateway.engine
        busy = 0.0
        for msg in messages:
            now[0] = base_ms + msg.t_ms
            if speed == "realtime":
                delay = (base_ms + msg.t_ms) / 1000 - time.time()
                if delay > 0:
                    time.sleep(delay)
            t0 = time.perf_counter()
            dispatch(msg.topic, msg.payload)
            busy += time.perf_counter() - t0
        end = now[0] + TAIL_MS
        while now[0] < end:
            now[0] += 100
            if speed == "realtime":
                time.sleep(0.1)
            engine.poll()
        result.busy_s += busy
        result.pick_to_cart_ms.extend(engine.latencies.pick_to_cart_ms)
        result.exit_to_receipt_ms.extend(engine.latencies.exit_to_receipt_ms)
        if result.vision is not None:
            for key, value in asdict(engine.sightings.stats).items():
                result.vision[key] = result.vision.get(key, 0) + value
        reviews = gateway.store.review_count()
        weight_events = (
            reviews
            + gateway.store.event_count("cart_change", from_devices=True)
            + gateway.store.event_count("unattributed_change")
        )
        gateway.store.close()
    shopper_of = {token: shopper for shopper, token in syn.tokens.items()}
    issued: dict[str, dict[str, int]] = {shopper: {} for shopper in case.shoppers}
    for r in receipts:
        shopper = shopper_of.get(r.session_token, r.session_token)
        issued[shopper] = {line.barcode: line.quantity for line in r.lines}
    return CaseResult(case.name, syn.truth, issued, reviews, weight_events, syn.sample_count)
