"""Calibration through the gateway's live ingest path (no broker, a controlled clock).

Shelf-1 plate 1 holds bread (600 g a unit); its load cell reports
``raw = 700 + 2.5 * grams`` until the gateway has its factors.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import pytest

from devices import protocol as p
from devices.calibration import Calibration
from edge.app import Gateway
from edge.config import CalibrationConfig
from tests.edge.helpers import Bench
from tests.edge.test_engine import B, _planogram

SHELF, PLATE = "shelf-1", 1
OFFSET, GAIN = 700.0, 2.5
CHECKOUT_EVENTS = ("cart_change", "unattributed_change", "small_change", "review")


class RawBench(Bench):
    """A Bench whose plates report raw readings through ``transfer``."""

    def __init__(self, tmp_path: Any) -> None:
        super().__init__(tmp_path, _planogram())
        self.transfer = {(SHELF, PLATE): (OFFSET, GAIN)}

    def tick(self, seconds: float = 0.2, where: Any = None) -> None:
        for _ in range(max(1, round(seconds / 0.2))):
            for shelf in self.planogram.shelves:
                samples = []
                for i in range(shelf.plate_count):
                    offset, gain = self.transfer.get((shelf.device_id, i), (0.0, 1.0))
                    load = self.loads[(shelf.device_id, i)]
                    samples.append(
                        [offset + gain * (load + self.rng.gauss(0, 1.0)) for _ in range(12)]
                    )
                self.send(p.weight_topic("s-1", shelf.device_id), {"samples": samples})
            self.now += 200

    def set_load(self, grams: float, seconds: float = 1.2) -> None:
        self.loads[(SHELF, PLATE)] = grams
        self.tick(seconds)

    def measure(self, what: str, known_g: float | None = None) -> Future[dict[str, Any]]:
        return self.gw.plates.calibrator.measure(SHELF, PLATE, what, known_g)

    def checkout_events(self) -> int:
        events = sum(self.store.event_count(kind) for kind in CHECKOUT_EVENTS)
        return events + len(self.store.reviews(status="open"))


@pytest.fixture
def bench(tmp_path):
    b = RawBench(tmp_path)
    b.tick(1)
    yield b
    b.store.close()


def _calibrate(bench: RawBench) -> dict[str, Any]:
    gw = bench.gw
    assert gw.calibrate(SHELF, PLATE, "start")["step"] == "empty_plate"
    bench.set_load(0.0)  # everything off the plate
    tare = bench.measure("tare")
    bench.tick(0.6)
    assert not tare.done()  # one second of samples is one measurement
    bench.tick(0.6)
    status = tare.result(0)
    assert status["step"] == "place_weight"
    assert status["session"]["tare_raw"] == pytest.approx(OFFSET, abs=1.0)
    span = bench.measure("span", 2000.0)
    bench.tick(1.2)
    assert not span.done()  # the weight is not on the plate yet: it waits
    bench.set_load(2000.0, seconds=1.4)
    status = span.result(0)
    assert status["step"] == "restock"
    assert status["session"]["span"] == pytest.approx(1 / GAIN, rel=2e-3)
    assert status["factors"]["span"] == status["session"]["span"]
    bench.set_load(3000.0, seconds=0.4)  # five loaves back
    finish = bench.measure("finish")  # waits for the restocked plate to settle
    assert gw.calibrate(SHELF, PLATE, "status")["step"] == "measuring_level"
    bench.tick(1.0)  # 60 samples: the plate is back with the last of them
    done = finish.result(0)
    assert done["step"] == "idle"
    assert done["session"] is None
    return done


def test_guided_calibration_makes_a_raw_plate_weigh_in_grams(bench):
    bench.gate("entry", "tok-1")  # a shopper in the store all along
    _calibrate(bench)
    assert bench.checkout_events() == 0  # emptying and loading the plate was no pick
    kinds = [e["kind"] for e in bench.store.events() if e["kind"].startswith("calibration")]
    assert kinds == [
        "calibration_started",
        "calibration_tare",
        "calibration_saved",
        "calibration_finished",
    ]
    bench.set_load(2400.0)  # at once the shopper takes a loaf: the baseline is known
    assert bench.store.cart("tok-1") == {B: 1}
    [change] = bench.store.events("cart_change")
    assert change["body"]["delta_g"] == pytest.approx(-600, abs=5)


def test_without_calibration_the_same_pick_is_not_understood(bench):
    bench.set_load(1000.0)
    bench.gate("entry", "tok-1")
    bench.set_load(400.0)  # one loaf: 1500 raw units
    assert bench.store.cart("tok-1") == {}


def test_factors_by_command_switch_without_a_pick_and_survive_a_restart(bench, tmp_path):
    bench.gate("entry", "tok-1")
    bench.tick(1)
    status = bench.gw.set_calibration(SHELF, PLATE, OFFSET, 1 / GAIN, "ana")
    assert status["factors"]["tare_raw"] == OFFSET
    bench.tick(2)  # the level jumps from 3200 (raw) to 1000 (g): not a change of load
    assert bench.checkout_events() == 0
    bench.set_load(400.0)
    assert bench.store.cart("tok-1") == {B: 1}
    bench.store.close()
    again = Gateway(bench.gw.config, planogram=bench.planogram)
    try:
        assert again.plates.calibrator.factors == {SHELF: {PLATE: Calibration(OFFSET, 1 / GAIN)}}
        again.set_calibration(SHELF, PLATE, None, None, "ana")
        assert again.plates.calibrator.factors == {SHELF: {}}
        assert again.store.calibrations() == []
    finally:
        again.store.close()


def test_cancel_keeps_the_old_factors_and_unmutes_the_plate(bench):
    bench.gw.set_calibration(SHELF, PLATE, OFFSET, 1 / GAIN, "ana")
    bench.gate("entry", "tok-1")
    bench.tick(1)
    bench.gw.calibrate(SHELF, PLATE, "start")
    bench.set_load(0.0)
    bench.measure("tare")
    bench.tick(1.2)
    bench.set_load(1000.0)
    status = bench.gw.calibrate(SHELF, PLATE, "cancel")
    assert status["step"] == "idle"
    assert status["factors"]["tare_raw"] == OFFSET
    bench.tick(1)
    assert bench.checkout_events() == 0
    bench.set_load(400.0)
    assert bench.store.cart("tok-1") == {B: 1}


def test_steps_out_of_order_and_unknown_plates_are_refused(bench):
    gw = bench.gw
    with pytest.raises(ValueError, match="not under calibration"):
        gw.calibrate(SHELF, PLATE, "finish")
    with pytest.raises(LookupError, match="not a shelf"):
        gw.calibrate("gate-in", 0, "start")
    with pytest.raises(LookupError, match="no plate 9"):
        gw.calibrate(SHELF, 9, "status")
    with pytest.raises(ValueError, match="unknown calibration action"):
        gw.calibrate(SHELF, PLATE, "jump")
    gw.calibrate(SHELF, PLATE, "start")
    with pytest.raises(ValueError, match="already under calibration"):
        gw.calibrate(SHELF, PLATE, "start")
    with pytest.raises(ValueError, match="'empty_plate'"):
        bench.measure("span", 1000.0)
    with pytest.raises(ValueError, match="'restock'"):
        gw.calibrate(SHELF, PLATE, "finish")
    with pytest.raises(ValueError, match="under calibration"):
        gw.set_calibration(SHELF, PLATE, 0.0, 1.0, "ana")
    with pytest.raises(ValueError, match="both"):
        gw.set_calibration(SHELF, 0, 0.0, None, "ana")
    bench.measure("tare")
    with pytest.raises(ValueError, match="'measuring_tare'"):
        bench.measure("tare")  # one measurement at a time
    bench.tick(1.2)
    with pytest.raises(ValueError, match="known_g"):
        gw.plates.calibrator.measure(SHELF, PLATE, "span", None)


def test_a_plate_that_does_not_settle_times_out_and_can_try_again(bench):
    plates = bench.gw.plates
    plates.cfg = plates.cfg.model_copy(
        update={"calibration": CalibrationConfig(measure_timeout_s=0.1)}
    )
    bench.gw.calibrate(SHELF, PLATE, "start")
    with pytest.raises(TimeoutError, match="did not settle"):
        bench.gw.calibrate(SHELF, PLATE, "tare")  # no samples arrive meanwhile
    assert bench.gw.calibrate(SHELF, PLATE, "status")["step"] == "empty_plate"
    assert not plates.calibrator.capturing
    tare = bench.measure("tare")
    bench.tick(1.2)
    assert tare.result(0)["step"] == "place_weight"


def test_a_stuck_plate_raises_one_maintenance_alert_that_resolves(bench):
    bench.transfer = {}
    frozen = [[1000.0] * 12] * 4

    def send_frozen(seconds: float) -> None:
        for _ in range(round(seconds / 0.2)):
            samples = [row if i != 3 else frozen[3] for i, row in enumerate(_live(bench))]
            bench.send(p.weight_topic("s-1", SHELF), {"samples": samples})
            bench.now += 200

    send_frozen(40)  # stuck_after_s is 30 by default
    [alert] = bench.store.alerts(kind="maintenance")
    assert (alert["kind"], alert["device_id"], alert["plate"]) == ("maintenance", SHELF, 3)
    assert alert["state"] == "open"
    assert alert["detail"]["conditions"] == ["stuck"]
    send_frozen(60)
    assert len(bench.store.alerts(kind="maintenance")) == 1
    bench.tick(40)  # alive again for longer than clear_after_s
    [alert] = bench.store.alerts(kind="maintenance")
    assert alert["state"] == "resolved"
    for kind in ("alert_raised", "alert_resolved"):  # once each (restock alerts aside)
        events = bench.store.events(kind)
        assert [e["body"]["kind"] for e in events].count("maintenance") == 1


def _live(bench: RawBench) -> list[list[float]]:
    return [
        [bench.loads[(SHELF, i)] + bench.rng.gauss(0, 1.0) for _ in range(12)] for i in range(4)
    ]


def test_an_alert_from_before_a_restart_resolves_once_the_plate_is_healthy(bench, tmp_path):
    bench.store.open_alert("maintenance", SHELF, 0, {"conditions": ["noisy"]}, bench.now)
    restarted = RawBench(tmp_path)  # a new gateway on the same database
    try:
        assert restarted.gw.plates.health.status(SHELF, 0)["conditions"] == ["noisy"]
        restarted.tick(40)  # healthy for longer than clear_after_s
        [alert] = restarted.store.alerts(kind="maintenance")
        assert alert["state"] == "resolved"
    finally:
        restarted.store.close()
