"""Cold-chain alerts: above the limit for less than the configured time is no alert;
longer is one; back in range resolves it.  Timed by the readings' own clock."""

import json

import pytest

from devices import protocol as p
from edge.app import Gateway
from edge.config import ConfigError, parse_config
from edge.staff.coldchain import COLD_CHAIN, limit_of, unit_status
from tests.edge.test_staff_restock import _planogram

T0 = 1_700_000_000_000


class Fridges:
    """A gateway (not started) that is handed fridge readings with chosen timestamps."""

    def __init__(self, tmp_path, **cold_chain):
        self.cfg = parse_config(
            {
                "store_id": "s-1",
                "planogram": "x.yaml",
                "gates": [{"device_id": "gate-in", "direction": "entry"}],
                "database": {"path": str(tmp_path / "g.db")},
                "cold_chain": {
                    "after_s": 600,
                    "units": [
                        {"device_id": "fridge-1", "name": "dairy", "max_c": 7.0},
                        {"device_id": "freezer-1", "max_c": -15.0, "after_s": 120},
                    ],
                    **cold_chain,
                },
            },
            base_dir=tmp_path,
            env={},
        )
        self.gw = Gateway(self.cfg, planogram=_planogram(), clock_ms=lambda: T0)
        self.published: list[tuple[str, bytes]] = []
        self.gw.alerts._publish = lambda topic, body: self.published.append((topic, body))
        self.seq = 0

    def reading(self, device_id: str, minute: float, celsius: float) -> None:
        self.seq += 1
        body = {"seq": self.seq, "ts": T0 + round(minute * 60_000), "celsius": celsius}
        topic = p.temperature_topic("s-1", device_id)
        assert self.gw.dispatcher.dispatch(topic, json.dumps(body).encode())

    def alerts(self, device_id="fridge-1"):
        return self.gw.store.alerts(kind=COLD_CHAIN, device_id=device_id)

    def close(self):
        self.gw.store.close()


@pytest.fixture
def fridges(tmp_path):
    f = Fridges(tmp_path)
    yield f
    f.close()


def test_above_the_limit_for_less_than_the_time_raises_nothing(fridges):
    fridges.reading("fridge-1", 0, 4.0)
    for minute in range(1, 10):  # 9 minutes at 9 C: the limit is 10 minutes
        fridges.reading("fridge-1", minute, 9.0)
    fridges.reading("fridge-1", 10, 6.5)  # back in range before 10 minutes were up
    for minute in range(11, 20):
        fridges.reading("fridge-1", minute, 9.0)  # a new excursion starts from zero
    assert fridges.alerts() == []


def test_above_the_limit_longer_raises_one_alert_that_resolves_back_in_range(fridges):
    fridges.reading("fridge-1", 0, 4.0)
    for minute in range(1, 11):
        fridges.reading("fridge-1", minute, 9.0)
    assert fridges.alerts() == []  # 9 minutes above (first above at minute 1)
    fridges.reading("fridge-1", 11, 9.5)  # 10 minutes above
    (alert,) = fridges.alerts()
    assert alert["state"] == "open"
    assert alert["detail"] == {
        "name": "dairy",
        "celsius": 9.5,
        "max_c": 7.0,
        "after_s": 600,
        "above_since_ms": T0 + 60_000,
    }
    for minute in range(12, 40):
        fridges.reading("fridge-1", minute, 11.0)
    fridges.reading("fridge-1", 40, 6.9)  # under the limit but within the clear margin
    assert [a["state"] for a in fridges.alerts()] == ["open"]
    fridges.reading("fridge-1", 41, 6.4)
    assert [a["state"] for a in fridges.alerts()] == ["resolved"]
    states = [json.loads(b)["state"] for t, b in fridges.published]
    assert states == ["open", "resolved"]
    assert fridges.published[0][0] == p.alert_topic("s-1", COLD_CHAIN)


def test_each_unit_has_its_own_limit_and_time(fridges):
    fridges.reading("freezer-1", 0, -18.0)
    fridges.reading("freezer-1", 1, -12.0)
    fridges.reading("freezer-1", 2.5, -12.0)  # 1.5 minutes: under its 2 minutes
    fridges.reading("fridge-1", 0, -12.0)  # the fridge is fine at that
    assert fridges.alerts("freezer-1") == []
    fridges.reading("freezer-1", 3, -11.0)
    assert len(fridges.alerts("freezer-1")) == 1
    assert fridges.alerts("fridge-1") == []
    assert limit_of(fridges.cfg.cold_chain, "other").max_c == 8.0  # the default


def test_an_old_reading_delivered_again_changes_nothing(fridges):
    fridges.reading("fridge-1", 0, 9.0)
    fridges.reading("fridge-1", 11, 9.0)
    fridges.reading("fridge-1", 5, 4.0)  # late: it does not end the excursion
    fridges.reading("fridge-1", 12, 9.0)
    assert len(fridges.alerts()) == 1
    assert fridges.alerts()[0]["state"] == "open"


def test_an_excursion_continues_across_a_restart(tmp_path):
    first = Fridges(tmp_path)
    first.reading("fridge-1", 0, 4.0)
    for minute in range(1, 8):
        first.reading("fridge-1", minute, 9.0)
    first.close()
    second = Fridges(tmp_path)  # the log says it has been above since minute 1
    second.seq = first.seq
    second.reading("fridge-1", 11, 9.0)
    assert len(second.alerts()) == 1
    status = unit_status(second.gw.store, second.cfg.cold_chain, "fridge-1")
    assert status["state"] == "alert"
    assert status["above_since_ms"] == T0 + 60_000
    assert status["last"]["celsius"] == 9.0
    second.close()


def test_cold_chain_config_is_strict(tmp_path):
    with pytest.raises(ConfigError, match="device ids repeat"):
        Fridges(tmp_path, units=[{"device_id": "f", "max_c": 5}, {"device_id": "f", "max_c": 6}])
    with pytest.raises(ConfigError, match=r"cold_chain\.units\.0\.max_f"):
        Fridges(tmp_path, units=[{"device_id": "f", "max_f": 40}])
