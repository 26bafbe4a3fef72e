"""The gateway's outbox: same transaction as the domain rows, order, acks, the disk budget."""

import logging
import sqlite3

import pytest

from edge.store.outbox import ROW_OVERHEAD_BYTES, class_of
from edge.store.repo import ReceiptRow, Store


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "g.db")
    yield s
    s.close()


def _receipt(store: Store, token: str, price: int = 250) -> str:
    store.open_session(token, "gate-in", 1)
    return store.close_with_receipt(token, "gate-out", 2, "EUR", [ReceiptRow("A", "a", 2, price)])


def _telemetry(store: Store, n: int, stream: str = "telemetry", size: int = 100) -> list[str]:
    ids = []
    for i in range(n):
        with store.transaction():
            ids.append(store.enqueue(stream, "telemetry", {"i": i, "pad": "x" * size}, ts_ms=i))
    return ids


def _held(store: Store) -> int:
    return int(store.db.execute("SELECT coalesce(sum(size_bytes), 0) FROM outbox").fetchone()[0])


def test_receipt_and_its_outbox_row_are_one_transaction(store):
    rid = _receipt(store, "tok-1")
    [row] = store.outbox_rows(kind="transaction")
    assert row["stream"] == "transactions"
    assert row["class"] == "money"
    assert row["sent_ms"] is None
    assert row["payload"]["receipt_id"] == rid
    assert row["payload"]["total_minor"] == 500
    assert row["payload"]["currency"] == "EUR"
    assert row["payload"]["lines"] == [
        {
            "barcode": "A",
            "name": "a",
            "quantity": 2,
            "unit_price_minor": 250,
            "line_total_minor": 500,
        }
    ]


def test_a_failed_receipt_write_leaves_no_outbox_row(store):
    store.open_session("tok-2", "gate-in", 1)
    bad = [ReceiptRow("A", "a", 1, 100), ReceiptRow("B", "b", 1, -5)]  # violates a CHECK
    with pytest.raises(sqlite3.IntegrityError):
        store.close_with_receipt("tok-2", "gate-out", 2, "EUR", bad)
    assert store.receipts() == []
    assert store.outbox_rows() == []
    assert store.outbox_backlog().rows == 0
    assert store.outbox_counters().get("held_bytes", 0) == 0  # the counter rolled back too


def test_an_outbox_write_that_fails_rolls_back_the_receipt(store):
    store.open_session("tok-3", "gate-in", 1)
    with store.transaction():
        store.enqueue("transactions", "transaction", {"x": 1}, ts_ms=1, event_id="dup-id")

    def close_and_enqueue():
        with store.transaction():
            store._x("UPDATE sessions SET state = 'closed' WHERE token = 'tok-3'")
            store.enqueue("transactions", "transaction", {"x": 2}, ts_ms=2, event_id="dup-id")

    with pytest.raises(sqlite3.IntegrityError):
        close_and_enqueue()
    assert store.session("tok-3")["state"] == "open"
    assert len(store.outbox_rows()) == 1


def test_enqueue_belongs_inside_a_transaction(store):
    with pytest.raises(RuntimeError, match="inside the transaction"):
        store.enqueue("telemetry", "telemetry", {}, ts_ms=1)
    with store.transaction(), pytest.raises(ValueError, match="money"):
        store.enqueue("transactions", "transaction", {}, ts_ms=1, cls="telemetry")


def test_device_state_changes_are_in_the_outbox(store):
    store.record_state("shelf-1", "shelf", "offline", 10, "lwt")
    [row] = store.outbox_rows(kind="device_state")
    assert row["stream"] == "devices"
    assert row["class"] == "state"
    assert row["payload"] == {
        "device_id": "shelf-1",
        "device_type": "shelf",
        "state": "offline",
        "reason": "lwt",
    }


def test_classes():
    assert class_of("transaction") == "money"
    assert class_of("refund") == "money"
    assert class_of("adjustment") == "money"
    assert class_of("telemetry") == "telemetry"
    assert class_of("device_state") == "state"


def test_pending_keeps_order_per_stream_and_respects_limits(store):
    for i in range(6):
        with store.transaction():
            store.enqueue("a" if i % 2 else "b", "state_x", {"i": i}, ts_ms=i)
    pending = store.outbox_pending(100, 1_000_000)
    assert [e.payload["i"] for e in pending] == [0, 1, 2, 3, 4, 5]
    assert [e.seq for e in pending] == sorted(e.seq for e in pending)
    assert [e.payload["i"] for e in store.outbox_pending(100, 1_000_000, stream="a")] == [1, 3, 5]
    assert len(store.outbox_pending(4, 1_000_000)) == 4
    # A byte limit smaller than one row still gives that row (progress is always possible).
    assert len(store.outbox_pending(100, 1)) == 1
    one_row = ROW_OVERHEAD_BYTES + len('{"i":0}')
    assert len(store.outbox_pending(100, 2 * one_row)) == 2


def test_marking_sent_only_the_acknowledged_ids(store):
    ids = _telemetry(store, 5)
    first = store.outbox_pending(100, 1_000_000)
    assert [e.event_id for e in first] == ids
    assert store.outbox_mark_sent([ids[0], ids[2], "unknown-id"], 1234) == 2
    assert store.outbox_mark_sent([ids[0]], 1235) == 0  # twice is harmless
    assert [e.event_id for e in store.outbox_pending(100, 1_000_000)] == [ids[1], ids[3], ids[4]]
    backlog = store.outbox_backlog()
    assert backlog.rows == 3
    assert backlog.last_acked_seq == first[2].seq
    assert backlog.bytes == sum(r["size_bytes"] for r in store.outbox_rows(unsent_only=True))
    assert backlog.held_bytes == _held(store)
    assert backlog.oldest_unsent_age_s is not None


def test_backlog_of_an_empty_outbox(store):
    backlog = store.outbox_backlog()
    assert (backlog.rows, backlog.bytes, backlog.oldest_unsent_age_s) == (0, 0, None)
    assert backlog.last_acked_seq is None
    assert backlog.evicted_rows == 0


def test_oldest_unsent_age(store):
    _telemetry(store, 1)
    created = store.outbox_rows()[0]["created_ms"]
    assert store.outbox_backlog(now_ms=created + 90_000).oldest_unsent_age_s == 90.0


def test_budget_evicts_telemetry_oldest_first_never_money(store, caplog):
    store.set_outbox_budget(4_000)
    receipts = [_receipt(store, f"tok-{i}") for i in range(3)]
    ids = _telemetry(store, 30)
    counters = store.outbox_counters()
    assert counters["evicted_rows"] > 0
    assert counters["evicted_telemetry"] == counters["evicted_rows"]
    left = [r["event_id"] for r in store.outbox_rows(kind="telemetry")]
    assert left == ids[-len(left) :]  # the oldest went first
    assert len(left) == 30 - counters["evicted_rows"]
    money = store.outbox_rows(kind="transaction")
    assert sorted(r["payload"]["receipt_id"] for r in money) == sorted(receipts)
    assert store.outbox_backlog().held_bytes == _held(store) <= 4_000
    assert store.outbox_backlog().evicted_rows == counters["evicted_rows"]
    assert any("evicted" in r.getMessage() for r in caplog.records)


def test_money_is_kept_over_budget(store, caplog):
    store.set_outbox_budget(1_000)
    caplog.set_level(logging.WARNING, logger="edge.store.outbox")
    _telemetry(store, 2)
    receipts = [_receipt(store, f"tok-{i}") for i in range(10)]
    assert {r["payload"]["receipt_id"] for r in store.outbox_rows(kind="transaction")} == set(
        receipts
    )
    assert store.outbox_rows(kind="telemetry") == []
    assert store.outbox_counters()["evicted_telemetry"] == 2
    assert store.outbox_backlog().held_bytes > 1_000  # over budget: money is never evicted
    assert any("only money is left" in r.getMessage() for r in caplog.records)


def test_sent_rows_go_before_unsent_telemetry_and_telemetry_before_state(store):
    store.set_outbox_budget(100_000)
    sent = _telemetry(store, 5, size=1000)
    store.outbox_mark_sent(sent, 1)
    with store.transaction():
        state = store.enqueue("devices", "device_state", {"pad": "s" * 1000}, ts_ms=1)
    unsent = _telemetry(store, 5, size=1000)
    store.set_outbox_budget(7_000)
    store.outbox_maintain(keep_sent_ms=10**12)  # keeps sent rows by age; the budget bites
    kept = {r["event_id"] for r in store.outbox_rows()}
    assert not kept & set(sent)  # sent rows first (not counted as evicted)
    assert state in kept  # state survives while telemetry can go
    counters = store.outbox_counters()
    assert counters["evicted_rows"] == counters["evicted_telemetry"] == 5 - len(kept & set(unsent))
    assert counters.get("evicted_state", 0) == 0
    store.set_outbox_budget(500)
    store.outbox_maintain(keep_sent_ms=10**12)
    assert state not in {r["event_id"] for r in store.outbox_rows()}
    assert store.outbox_counters()["evicted_state"] == 1


def test_maintain_drops_old_sent_rows_and_keeps_the_byte_count(store):
    ids = _telemetry(store, 4)
    store.outbox_mark_sent(ids[:3], 1_000)
    assert store.outbox_maintain(keep_sent_ms=500, now_ms=1_400) == 0  # not old enough
    assert store.outbox_maintain(keep_sent_ms=500, now_ms=2_000) == 3
    assert [r["event_id"] for r in store.outbox_rows()] == [ids[3]]
    assert store.outbox_counters()["held_bytes"] == _held(store)
    assert store.outbox_counters().get("evicted_rows", 0) == 0  # pruning sent rows is no eviction


def test_counters_survive_a_restart(tmp_path):
    s = Store.open(tmp_path / "g.db")
    s.set_outbox_budget(2_000)
    ids = _telemetry(s, 20)
    s.outbox_mark_sent(ids[-1:], 5)
    before = s.outbox_counters()
    s.close()
    again = Store.open(tmp_path / "g.db")
    try:
        assert again.outbox_counters() == before
        assert again.outbox_backlog().last_acked_seq is not None
    finally:
        again.close()
