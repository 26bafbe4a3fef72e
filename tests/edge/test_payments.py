"""Payments: every charge and refund has an idempotency key; a retry never charges twice."""

from __future__ import annotations

import logging

import pytest

from edge.shoppers.payments import PaymentUnavailable, SimulatedProvider
from edge.store.repo import ReceiptRow
from tests.edge.helpers import Bench
from tests.edge.test_engine import B, _planogram

SECRET = "payments-secret-of-32-bytes-long"


@pytest.fixture
def bench(tmp_path):
    b = Bench(tmp_path, _planogram(), shoppers={"secret": SECRET})
    b.tick(1)
    yield b
    b.store.close()


def _shop(bench: Bench, shopper: str, grams: float = -600) -> str:
    """A visit: check in, take bread (300), leave; returns the receipt id."""
    token = bench.gw.shoppers.issue_checkin(shopper)["session_token"]
    bench.gate("entry", token)
    bench.change("shelf-1", 1, grams)
    bench.gate("exit", token)
    bench.tick(2)
    return bench.receipts[-1].receipt_id


def _provider(bench: Bench) -> SimulatedProvider:
    provider = bench.gw.shoppers.payments.provider
    assert isinstance(provider, SimulatedProvider)
    return provider


def test_a_receipt_is_charged_once(bench) -> None:
    receipt_id = _shop(bench, "shp_a")
    [row] = bench.store.payments()
    assert (row["idempotency_key"], row["status"]) == (f"receipt:{receipt_id}", "pending")
    assert (row["kind"], row["amount_minor"], row["shopper_id"]) == ("charge", 300, "shp_a")
    payments = bench.gw.shoppers.payments
    assert payments.settle_pending() == 1
    assert payments.settle_pending() == 0  # nothing pending: the provider is not asked
    assert payments.request_owed() == 0  # the receipt has its charge
    [row] = bench.store.payments()
    assert row["status"] == "succeeded"
    assert row["provider_ref"].startswith("sim_")
    assert _provider(bench).calls == 1
    assert _provider(bench).total("shp_a") == 300


@pytest.mark.parametrize("lost_answer", [True, False])
def test_a_retry_after_a_failure_never_charges_twice(bench, caplog, lost_answer) -> None:
    provider = _provider(bench)
    provider.fail_next, provider.lost_answer = 1, lost_answer
    _shop(bench, "shp_b")
    payments = bench.gw.shoppers.payments
    with caplog.at_level(logging.WARNING):
        assert payments.settle_pending() == 0
    assert "will retry" in caplog.text
    [row] = bench.store.payments()
    assert (row["status"], row["attempts"]) == ("pending", 1)
    # with lost_answer the money moved but the answer never came back
    assert len(provider.ledger) == (1 if lost_answer else 0)
    assert payments.settle_pending() == 1  # the retry sends the same key
    [row] = bench.store.payments()
    assert (row["status"], row["attempts"]) == ("succeeded", 2)
    assert provider.calls == 2
    assert len(provider.ledger) == 1
    assert provider.total("shp_b") == 300  # charged once


def test_a_receipt_whose_charge_was_never_requested_is_found_on_start(bench) -> None:
    # a crash between the receipt's commit and the charge's request
    token = bench.gw.shoppers.issue_checkin("shp_c")["session_token"]
    bench.gate("entry", token)
    bench.gw.engine.open_sessions.discard(token)
    receipt_id = bench.store.close_with_receipt(
        token, "gate-out", bench.now, "EUR", [ReceiptRow(B, "bread", 2, 300)]
    )
    assert bench.store.payments() == []
    payments = bench.gw.shoppers.payments
    assert payments.request_owed() == 1  # what Gateway.start() does
    assert payments.request_owed() == 0
    payments.settle_pending()
    [row] = bench.store.payments(receipt_id=receipt_id)
    assert (row["amount_minor"], row["status"]) == (600, "succeeded")


def test_the_same_key_is_one_payment_and_a_reused_key_is_refused(bench) -> None:
    payments = bench.gw.shoppers.payments
    first = payments.request("order:o1", "charge", 500, "EUR", "shp_d", order_id="o1")
    again = payments.request("order:o1", "charge", 500, "EUR", "shp_d", order_id="o1")
    assert first is not None
    assert again is not None
    assert first["payment_id"] == again["payment_id"]
    assert len(bench.store.payments()) == 1
    assert payments.request("order:o2", "charge", 0, "EUR", "shp_d") is None  # nothing to pay
    provider = _provider(bench)
    provider.charge("k", 100, "EUR", "shp_d")
    with pytest.raises(ValueError, match="reused"):
        provider.charge("k", 999, "EUR", "shp_d")


def test_a_declined_card_is_recorded(tmp_path) -> None:
    bench = Bench(
        tmp_path,
        _planogram(),
        shoppers={"secret": SECRET, "payments": {"decline_over_minor": 100}},
    )
    bench.tick(1)
    _shop(bench, "shp_e")
    bench.gw.shoppers.payments.settle_pending()
    [row] = bench.store.payments()
    assert (row["status"], row["detail"]) == ("declined", "card declined")
    bench.store.close()


def test_unavailable_is_not_a_decline() -> None:
    provider = SimulatedProvider()
    provider.fail_next = 1
    with pytest.raises(PaymentUnavailable):
        provider.refund("r1", 100, "EUR", "s")
    assert provider.refund("r1", 100, "EUR", "s").status == "succeeded"
    assert provider.total() == -100
