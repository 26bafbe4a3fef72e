"""The alerts table (one active alert per kind, device and plate) and stored factors."""

from __future__ import annotations

import sqlite3

import pytest

from edge.store.repo import Store


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "g.db")
    yield s
    s.close()


def test_an_alert_is_raised_once_acked_resolved_and_raised_anew(store):
    first, new = store.open_alert("maintenance", "shelf-1", 2, {"conditions": ["stuck"]}, 100)
    assert new
    assert first["state"] == "open"
    assert first["detail"] == {"conditions": ["stuck"]}
    again, new = store.open_alert("maintenance", "shelf-1", 2, {"conditions": ["noisy"]}, 200)
    assert not new
    assert again["alert_id"] == first["alert_id"]
    other, new = store.open_alert("maintenance", "shelf-1", 3, {}, 250)  # another plate
    assert new
    acked, changed = store.ack_alert(first["alert_id"], 300, "ana")
    assert changed
    assert (acked["state"], acked["acked_ms"]) == ("acked", 300)
    assert store.ack_alert(first["alert_id"], 310, "ana")[1] is False  # twice is fine
    # acked is still active: raising it again changes nothing
    assert store.open_alert("maintenance", "shelf-1", 2, {}, 320)[1] is False
    resolved = store.resolve_alert("maintenance", "shelf-1", 2, 400)
    assert resolved is not None
    assert (resolved["state"], resolved["resolved_ms"]) == ("resolved", 400)
    assert store.resolve_alert("maintenance", "shelf-1", 2, 410) is None
    with pytest.raises(ValueError, match="resolved"):
        store.ack_alert(first["alert_id"], 420, "ana")
    with pytest.raises(LookupError):
        store.ack_alert("nope", 420, "ana")
    fresh, new = store.open_alert("maintenance", "shelf-1", 2, {}, 500)
    assert new
    assert fresh["alert_id"] != first["alert_id"]
    assert [a["alert_id"] for a in store.alerts(state="active")] == [
        fresh["alert_id"],
        other["alert_id"],
    ]
    assert [a["alert_id"] for a in store.alerts(state="resolved")] == [first["alert_id"]]
    assert store.alerts(kind="restock") == []
    kinds = [e["kind"] for e in store.events() if e["kind"].startswith("alert_")]
    assert kinds == [
        "alert_raised",
        "alert_raised",
        "alert_acked",
        "alert_resolved",
        "alert_raised",
    ]


def test_device_alerts_without_a_plate_are_one_per_device(store):
    assert store.open_alert("cold_chain", "fridge-1", None, {}, 1)[1]
    assert not store.open_alert("cold_chain", "fridge-1", None, {}, 2)[1]
    assert store.resolve_alert("cold_chain", "fridge-1", None, 3) is not None


def test_the_database_refuses_a_second_active_alert(store):
    store.open_alert("maintenance", "shelf-1", 0, {}, 1)
    with pytest.raises(sqlite3.IntegrityError):
        store.db.conn.execute(
            "INSERT INTO alerts (alert_id, kind, device_id, plate, state, raised_ms)"
            " VALUES ('x', 'maintenance', 'shelf-1', 0, 'open', 2)"
        )


def test_calibration_factors_are_saved_replaced_and_forgotten(store):
    assert store.calibration("shelf-1", 0) is None
    store.save_calibration("shelf-1", 0, 812.5, 0.4, 10, {"by": "guided"})
    store.save_calibration("shelf-1", 0, 800.0, 0.5, 20, {"by": "command"})
    store.save_calibration("shelf-2", 3, 0.0, 1.01, 30, {"by": "command"})
    row = store.calibration("shelf-1", 0)
    assert row == {
        "device_id": "shelf-1",
        "plate": 0,
        "tare_raw": 800.0,
        "span": 0.5,
        "updated_ms": 20,
    }
    assert [(r["device_id"], r["plate"]) for r in store.calibrations()] == [
        ("shelf-1", 0),
        ("shelf-2", 3),
    ]
    assert store.delete_calibration("shelf-1", 0, 40, "staff")
    assert not store.delete_calibration("shelf-1", 0, 50, "staff")
    assert store.calibrations("shelf-1") == []
    saved = [e["body"] for e in store.events("calibration_saved")]
    assert [(b["tare_raw"], b["span"], b["by"]) for b in saved][:2] == [
        (812.5, 0.4, "guided"),
        (800.0, 0.5, "command"),
    ]
    assert store.event_count("calibration_cleared") == 1
