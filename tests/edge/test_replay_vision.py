"""The replay with a simulated product camera (``--vision``): through the same wire path,
never worse than weight alone on dev cases with weight ties."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from devices.protocol import MessageKind, ProductSeen, decode
from edge.cli import app
from edge.replay.product_camera import CameraRealism, ProductCamera
from edge.replay.runner import STORE_ID, replay
from firmware_sim.aifi.cases import load_cases
from firmware_sim.aifi.dataset import find_dataset
from firmware_sim.aifi.layout import load_store
from firmware_sim.replay.realism import Realism
from firmware_sim.replay.synth import synthesize

DATASET = find_dataset()
pytestmark = pytest.mark.skipif(DATASET is None, reason="AiFi dataset not found")
# products of equal weight on the same plates (ICE drinks, Kettle chips, waters), and a plain one
TIES = ["cps-test-10", "cps-test-21", "cps-test-24", "cps-test-4"]


@pytest.fixture(scope="module")
def aifi():
    assert DATASET is not None
    return load_store(DATASET), load_cases(DATASET / "ground_truth" / "dev.json")


def test_vision_does_not_score_lower_than_weight_alone(aifi):
    store, cases = aifi
    chosen = [c for c in cases if c.name in TIES]
    weight = replay(chosen, store, seed=0).summary()
    assert "vision" not in weight  # off unless asked
    args = ["replay", "aifi", "--json", "--vision", "--seed", "0"]
    for name in TIES:
        args += ["--only", name]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    fused = json.loads(result.output.strip().splitlines()[-1])
    assert fused["cases"] == weight["cases"] == len(TIES)
    assert fused["f1"] >= weight["f1"], (fused, weight)
    assert fused["exact_match_rate"] >= weight["exact_match_rate"], (fused, weight)
    assert fused["review_rate"] <= weight["review_rate"], (fused, weight)
    vision = fused["vision"]
    assert 0 < vision["seen"] < vision["grabs"]  # the camera misses some grabs
    assert vision["received"] == vision["seen"]  # every view got through the wire
    assert vision["used"] > 0


def test_camera_messages_are_wire_messages_of_the_true_products(aifi):
    store, cases = aifi
    case = next(c for c in cases if c.name == "cps-test-4")
    syn = synthesize(
        case, store, STORE_ID, seed=0, realism=Realism(), base_ms=1_000, tracker="tracker-1"
    )
    camera = ProductCamera(CameraRealism(miss_rate=0.0, px=(48, 48), blur_px=(1, 1)))
    names = {p.barcode: p.name for p in store.planogram.products}
    messages = camera.messages(case, syn, STORE_ID, 1_000, names, seed=0)
    birth, *seen = (decode(m.topic, m.payload) for m in messages)
    assert birth.kind is MessageKind.BIRTH
    assert [m.kind for m in seen] == [MessageKind.PRODUCT] * camera.stats.grabs
    views = [m.message for m in seen if isinstance(m.message, ProductSeen)]
    assert [v.seq for v in views] == list(range(1, len(seen) + 1))
    assert [m.t_ms for m in messages] == sorted(m.t_ms for m in messages)
    places: dict[int, tuple[str, set[int]]] = {}
    for change in syn.changes:
        places.setdefault(change.event, (change.shelf_id, set()))[1].add(change.plate)
    assert len(seen) == len(places)
    assert sorted((v.shelf_id, v.plates) for v in views) == sorted(
        (shelf, sorted(plates)) for shelf, plates in places.values()
    )
    assert camera.stats.top1_right >= 0.8 * camera.stats.seen  # sharp views: mostly right


def test_a_hand_off_the_camera_sees_is_charged_to_the_taker(aifi):
    store, _ = aifi
    from firmware_sim.replay.synthetic import generate_cases  # noqa: PLC0415

    cases = generate_cases(store.planogram, shoppers=6, minutes=2, seed=3)
    case = next(c for c in cases if any(e.kind == "handoff" for e in c.events))
    handoff = next(e for e in case.events if e.kind == "handoff")
    giver, taker, barcode = handoff.shopper, handoff.to_shopper, handoff.barcode
    weight = replay([case], store, seed=3).cases[0]
    seen = replay([case], store, seed=3, camera=ProductCamera(CameraRealism(miss_rate=0.0)))
    fused = seen.cases[0]
    assert seen.vision is not None
    assert seen.vision["handoffs"] == seen.vision["handoffs_seen"] >= 1
    truth = fused.truth
    # without the camera the giver keeps paying for what the taker left with ...
    assert weight.issued[giver].get(barcode, 0) > truth[giver].get(barcode, 0)
    # ... with it, each pays for what they left with
    assert fused.issued[giver].get(barcode, 0) == truth[giver].get(barcode, 0)
    assert fused.issued[taker].get(barcode, 0) == truth[taker].get(barcode, 0)
