import sqlite3
from pathlib import Path

import pytest

from edge.store import db
from edge.store.repo import ReceiptRow, Store


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "g.db")
    yield s
    s.close()


def test_wal_strict_sync_and_migrations(store, tmp_path):
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    shipped = sorted(Path(db.__file__).parent.joinpath("migrations").glob("[0-9]*.sql"))
    expected = list(range(1, len(shipped) + 1))
    assert len(expected) >= 6
    versions = [r[0] for r in store.db.execute("SELECT version FROM schema_migrations")]
    assert versions == expected
    store.close()
    again = Store.open(tmp_path / "g.db")  # re-opening applies nothing twice
    assert [r[0] for r in again.db.execute("SELECT version FROM schema_migrations")] == expected
    again.close()


def test_cart_and_receipt(store):
    assert store.open_session("tok-1", "gate-in", 1)
    assert not store.open_session("tok-1", "gate-in", 2)
    store.change_cart("tok-1", "A", 2, 3, "shelf", {})
    store.change_cart("tok-1", "B", 1, 4, "shelf", {})
    assert store.change_cart("tok-1", "A", -1, 5, "shelf", {}) == 1
    assert store.change_cart("tok-1", "B", -1, 6, "shelf", {}) == 0
    assert store.cart("tok-1") == {"A": 1}
    rid = store.close_with_receipt("tok-1", "gate-out", 7, "EUR", [ReceiptRow("A", "a", 1, 250)])
    receipt = store.receipt(rid)
    assert receipt is not None
    assert receipt["total_minor"] == 250
    assert receipt["lines"][0]["line_total_minor"] == 250
    assert store.session("tok-1")["state"] == "closed"


def test_receipt_and_lines_are_one_transaction(store):
    store.open_session("tok-2", "gate-in", 1)
    bad = [ReceiptRow("A", "a", 1, 100), ReceiptRow("B", "b", 1, -5)]  # violates a CHECK
    with pytest.raises(sqlite3.IntegrityError):
        store.close_with_receipt("tok-2", "gate-out", 2, "EUR", bad)
    assert store.receipts() == []
    assert store.db.execute("SELECT count(*) FROM receipt_lines").fetchone()[0] == 0
    assert store.session("tok-2")["state"] == "open"  # the close was rolled back too


def test_closing_twice_is_refused(store):
    store.open_session("tok-3", "gate-in", 1)
    store.close_with_receipt("tok-3", "gate-out", 2, "EUR", [])
    with pytest.raises(LookupError):
        store.close_with_receipt("tok-3", "gate-out", 3, "EUR", [])


def test_dead_letters_keep_payload_and_reason(store):
    store.dead_letter("t/x", b"\xffgarbage", "payload is not JSON", 1)
    [row] = store.dead_letters()
    assert row["reason"] == "payload is not JSON"
    assert row["topic"] == "t/x"
    assert store.dead_letter_count() == 1
