"""Restock alerts from lane weights: thresholds, hysteresis, refill, restart, staff count."""

import json

import pytest

from devices import protocol as p
from devices.layout import Planogram
from edge.config import RestockConfig
from edge.staff.restock import RESTOCK, lane_is_low, plan_lanes
from edge.store.repo import Store
from tests.edge.helpers import Bench
from tests.edge.test_calibration_flow import RawBench, _calibrate
from tests.edge.test_engine import B

COLA, RICE, GUM, AIR = "100", "200", "300", "400"
COLA_G = 350.0


def _planogram() -> Planogram:
    return Planogram.model_validate(
        {
            "products": [
                {"barcode": COLA, "name": "cola", "unit_weight_g": COLA_G, "price_minor": 149},
                {"barcode": RICE, "name": "rice", "unit_weight_g": 1000, "price_minor": 289},
                {"barcode": GUM, "name": "gum", "unit_weight_g": 58, "price_minor": 99},
                {"barcode": AIR, "name": "air", "unit_weight_g": 0, "price_minor": 1},
            ],
            "shelves": [
                {
                    "device_id": "shelf-1",
                    "plates": [
                        {"plate": 0, "barcode": COLA, "stock": 6, "restock_at": 2},
                        {"plate": 1, "barcode": RICE, "stock": 8},
                        {"plate": 2, "barcode": RICE, "stock": 4},
                        {"plate": 3, "barcode": AIR, "stock": 3},
                    ],
                },
                {"device_id": "shelf-2", "plates": [{"plate": 0, "barcode": GUM, "stock": 2}]},
            ],
        }
    )


@pytest.fixture
def bench(tmp_path):
    b = Bench(tmp_path, _planogram())
    b.published = []
    b.gw.alerts._publish = lambda topic, payload: b.published.append((topic, payload))
    b.tick(1)
    b.gw.staff.tick()  # the first settled weights: the planogram's stock
    yield b
    b.store.close()


def _lane(bench, barcode="100", shelf="shelf-1"):
    return next(r for r in bench.store.lanes(shelf) if r["barcode"] == barcode)


def _restock_alerts(bench):
    return bench.store.alerts(kind=RESTOCK)


def test_lanes_group_the_plates_of_a_product_with_their_thresholds():
    lanes = {lane.key: lane for lane in plan_lanes(_planogram(), RestockConfig())}
    cola = lanes[("shelf-1", COLA)]
    assert (cola.plates, cola.planned_units, cola.restock_at, cola.refilled_at) == ((0,), 6, 2, 4)
    rice = lanes[("shelf-1", RICE)]  # two plates, one lane; 25 % of 12 units
    rice_plan = (rice.plates, rice.planned_units, rice.restock_at, rice.refilled_at)
    assert rice_plan == ((1, 2), 12, 3, 5)
    gum = lanes[("shelf-2", GUM)]  # a small lane: refilled at its full stock, not above it
    assert (gum.restock_at, gum.refilled_at) == (1, 2)
    assert ("shelf-1", AIR) not in lanes  # weighs nothing: weight cannot count it
    never = plan_lanes(_planogram(), RestockConfig(default_share=0))
    assert {lane.barcode: lane.restock_at for lane in never} == {COLA: 2, RICE: None, GUM: None}


def test_stock_is_estimated_from_the_settled_weight(bench):
    assert _lane(bench)["units"] == 6
    assert _lane(bench, RICE)["units"] == 12
    bench.change("shelf-1", 2, -2 * 1000)  # two rice packs from the second plate
    assert _lane(bench, RICE)["units"] == 10
    bench.change("shelf-1", 0, -COLA_G)
    assert _lane(bench)["units"] == 5
    assert _restock_alerts(bench) == []


def test_a_lane_hovering_at_its_threshold_raises_one_alert(bench):
    for _ in range(4):  # 6 -> 2: at the threshold
        bench.change("shelf-1", 0, -COLA_G)
    alerts = _restock_alerts(bench)
    assert len(alerts) == 1
    assert alerts[0]["state"] == "open"
    assert alerts[0]["detail"]["units"] == 2
    for delta in (+COLA_G, -COLA_G, +COLA_G, -COLA_G, +COLA_G, -COLA_G):  # 3, 2, 3, 2, 3, 2
        bench.change("shelf-1", 0, delta)
    alerts = _restock_alerts(bench)
    assert len(alerts) == 1, "hovering at the threshold raised the alert again"
    assert alerts[0]["state"] == "open"
    raised = [json.loads(body) for topic, body in bench.published if topic.endswith("/restock")]
    assert [m["state"] for m in raised] == ["open"]
    assert raised[0]["device_id"] == "shelf-1"
    assert raised[0]["detail"]["name"] == "cola"
    assert bench.published[0][0] == p.alert_topic("s-1", RESTOCK)


def test_acknowledged_then_resolved_by_a_refill_and_raised_again_when_low(bench):
    for _ in range(5):  # 6 -> 1
        bench.change("shelf-1", 0, -COLA_G)
    (alert,) = _restock_alerts(bench)
    assert alert["detail"]["units"] == 1
    bench.gw.ack_alert(alert["alert_id"], "ann")
    assert bench.store.alert(alert["alert_id"])["state"] == "acked"
    bench.change("shelf-1", 0, +2 * COLA_G)  # 3: above the threshold, not yet refilled
    assert bench.store.alert(alert["alert_id"])["state"] == "acked"
    bench.change("shelf-1", 0, +3 * COLA_G)  # 6: refilled
    assert bench.store.alert(alert["alert_id"])["state"] == "resolved"
    assert _lane(bench)["units"] == 6
    for _ in range(4):
        bench.change("shelf-1", 0, -COLA_G)
    states = sorted(a["state"] for a in _restock_alerts(bench))
    assert states == ["open", "resolved"]
    states = [json.loads(b)["state"] for t, b in bench.published if t.endswith("/restock")]
    assert states == ["open", "acked", "resolved", "open"]


def test_a_pick_before_the_first_settled_look_still_counts_from_the_planogram(tmp_path):
    bench = Bench(tmp_path, _planogram())
    bench.tick(1)  # settled, but the monitor has not looked yet
    bench.change("shelf-1", 0, -COLA_G)
    assert _lane(bench)["units"] == 5
    bench.store.close()


def test_levels_and_alerts_survive_a_restart(tmp_path):
    bench = Bench(tmp_path, _planogram())
    bench.tick(1)
    bench.gw.staff.tick()
    for _ in range(4):
        bench.change("shelf-1", 0, -COLA_G)
    assert len(_restock_alerts(bench)) == 1
    bench.store.close()
    again = Bench(tmp_path, _planogram())  # same database
    again.loads = dict(bench.loads)
    again.tick(1)
    again.gw.staff.tick()
    assert _lane(again)["units"] == 2  # the learned tare was kept
    again.change("shelf-1", 0, -COLA_G)
    alerts = _restock_alerts(again)
    assert len(alerts) == 1
    assert alerts[0]["detail"]["units"] == 1
    again.store.close()


def test_a_staff_count_resets_the_estimate(bench):
    bench.gw.staff.count_lane("shelf-1", COLA, 2, "ann")  # only two there, say staff
    assert _lane(bench)["units"] == 2
    (alert,) = _restock_alerts(bench)
    assert alert["detail"]["units"] == 2
    bench.change("shelf-1", 0, +COLA_G)
    assert _lane(bench)["units"] == 3
    with pytest.raises(LookupError):
        bench.gw.staff.count_lane("shelf-1", GUM, 1, "ann")
    assert bench.store.events(kind="stock_counted")[0]["body"]["units"] == 2


def test_a_calibrated_plate_keeps_its_units_and_counts_on_in_grams(tmp_path):
    bench = RawBench(tmp_path)  # bread reads raw = 700 + 2.5 g until calibrated
    bench.tick(1)
    bench.gw.staff.tick()
    assert _lane(bench, B)["units"] == 5  # learned in raw units: 5 loaves of planogram
    assert _lane(bench, B)["tare_g"] == pytest.approx(3200 - 5 * 600, abs=10)
    _calibrate(bench)  # ends with five loaves back on the plate, now weighed in grams
    bench.gw.staff.tick()
    assert _lane(bench, B)["units"] == 5
    assert _lane(bench, B)["tare_g"] == pytest.approx(0, abs=10)  # grams now, not raw
    bench.set_load(2400.0)  # a loaf taken
    assert _lane(bench, B)["units"] == 4
    assert _restock_alerts(bench) == []
    bench.store.close()


def test_low_is_at_or_below_the_threshold_and_the_store_counts_the_same(tmp_path):
    cases = [(0, 2), (1, 2), (2, 2), (3, 2), (0, 0), (1, 0), (None, 2), (1, None), (None, None)]
    assert [lane_is_low(units, at) for units, at in cases] == [
        True, True, True, False, True, False, False, False, False
    ]  # fmt: skip
    store = Store.open(tmp_path / "g.db")
    try:
        for i, (units, at) in enumerate(cases):
            lane = {
                "device_id": f"shelf-{i}",
                "barcode": COLA,
                "plates": [0],
                "unit_weight_g": COLA_G,
                "planned_units": 6,
                "restock_at": at,
                "refilled_at": None if at is None else at + 2,
                "tare_g": None,
                "level_g": None,
                "units": units,
            }
            store.save_lane(lane, 1)
        assert store.lanes_low() == sum(lane_is_low(u, at) for u, at in cases) == 4
    finally:
        store.close()
