"""Charging and refunding shoppers, exactly once.

Every charge and refund has an idempotency key (``receipt:<id>``,
``adjustment:<id>``, ``order:<id>``).  The gateway first writes the payment
row as ``pending`` under that key (a unique column: asking twice is one row),
then asks the provider with the same key, then records the answer.  A crash or
a timeout anywhere in between leaves the row pending; the retry sends the same
key, and the provider answers with the payment it already made instead of
charging again.  A payment that succeeded is never sent again.

The provider calls run on the payments thread (never on the gateway's worker,
which must not wait on a network); every database write goes through the
worker (``call``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, Protocol

from edge.store.base import new_event_id
from edge.store.repo import Store

log = logging.getLogger(__name__)

#: A pending payment is retried this often (seconds) when nothing wakes the thread.
RETRY_S = 5.0

Kind = Literal["charge", "refund"]


@dataclass(frozen=True)
class ProviderAnswer:
    status: Literal["succeeded", "declined"]
    provider_ref: str
    detail: str = ""


class PaymentUnavailable(Exception):
    """The provider could not be asked or did not answer: try again with the same key."""


class PaymentProvider(Protocol):
    """A card processor.  It MUST treat a repeated idempotency key as the same payment."""

    name: str

    def charge(
        self, key: str, amount_minor: int, currency: str, customer: str
    ) -> ProviderAnswer: ...

    def refund(
        self, key: str, amount_minor: int, currency: str, customer: str
    ) -> ProviderAnswer: ...


class SimulatedProvider:
    """A local provider for the demo and the tests: a ledger in memory, keyed by the
    idempotency key, like a real processor's.  ``fail_next`` makes the next calls raise
    ``PaymentUnavailable`` after (``lost_answer``) or before the money moved."""

    name = "simulated"

    def __init__(self, decline_over_minor: int | None = None) -> None:
        self.decline_over_minor = decline_over_minor
        self.ledger: dict[str, tuple[Kind, int, str, str, ProviderAnswer]] = {}
        self.calls = 0
        self.fail_next = 0
        self.lost_answer = False
        self._lock = threading.Lock()

    def charge(self, key: str, amount_minor: int, currency: str, customer: str) -> ProviderAnswer:
        return self._pay("charge", key, amount_minor, currency, customer)

    def refund(self, key: str, amount_minor: int, currency: str, customer: str) -> ProviderAnswer:
        return self._pay("refund", key, amount_minor, currency, customer)

    def _pay(
        self, kind: Kind, key: str, amount_minor: int, currency: str, customer: str
    ) -> ProviderAnswer:
        with self._lock:
            self.calls += 1
            failing = self.fail_next > 0
            if failing:
                self.fail_next -= 1
                if not self.lost_answer:
                    raise PaymentUnavailable("simulated provider: connection refused")
            if key in self.ledger:
                before = self.ledger[key]
                if before[:4] != (kind, amount_minor, currency, customer):
                    raise ValueError(f"idempotency key {key} reused for another payment")
                answer = before[4]
            else:
                declined = (
                    kind == "charge"
                    and self.decline_over_minor is not None
                    and amount_minor > self.decline_over_minor
                )
                answer = ProviderAnswer(
                    "declined" if declined else "succeeded",
                    f"sim_{new_event_id()}",
                    "card declined" if declined else "",
                )
                self.ledger[key] = (kind, amount_minor, currency, customer, answer)
            if failing:  # the money moved, the answer was lost on the way back
                raise PaymentUnavailable("simulated provider: timed out")
            return answer

    def total(self, customer: str | None = None) -> int:
        """Net amount taken (charges minus refunds) that succeeded."""
        with self._lock:
            return sum(
                (amount if kind == "charge" else -amount)
                for kind, amount, _, who, answer in self.ledger.values()
                if answer.status == "succeeded" and customer in (None, who)
            )


class Payments:
    """Requests payments (on the worker) and settles them with the provider (its thread)."""

    def __init__(
        self,
        store: Store,
        provider: PaymentProvider | None,
        call: Callable[[Callable[[], Any]], Any],
        clock_ms: Callable[[], int],
    ) -> None:
        self.store = store
        self.provider = provider
        self._call = call
        self._clock_ms = clock_ms
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._settle_lock = threading.Lock()

    # ------------------------------------------------------------------ requests (worker)

    def request(
        self,
        key: str,
        kind: Kind,
        amount_minor: int,
        currency: str,
        shopper_id: str,
        *,
        receipt_id: str | None = None,
        order_id: str | None = None,
    ) -> dict[str, Any] | None:
        """Record a payment to make (once per key); None if there is nothing to pay."""
        if self.provider is None or amount_minor <= 0:
            return None
        row = self.store.request_payment(
            key,
            kind=kind,
            amount_minor=amount_minor,
            currency=currency,
            shopper_id=shopper_id,
            provider=self.provider.name,
            ts=self._clock_ms(),
            receipt_id=receipt_id,
            order_id=order_id,
        )
        self._wake.set()
        return row

    def request_owed(self, receipt_id: str | None = None) -> int:
        """Charges for issued receipts and charges/refunds for adjustments that have no
        payment yet (after a receipt, a review decision, or a restart).  On the worker."""
        if self.provider is None:
            return 0
        made = 0
        for r in self.store.unpaid_receipts(receipt_id):
            key = f"receipt:{r['receipt_id']}"
            made += bool(
                self.request(
                    key,
                    "charge",
                    int(r["total_minor"]),
                    r["currency"],
                    r["shopper_id"],
                    receipt_id=r["receipt_id"],
                )
            )
        for a in self.store.unpaid_adjustments() if receipt_id is None else []:
            amount = int(a["amount_minor"])
            made += bool(
                self.request(
                    f"adjustment:{a['adjustment_id']}",
                    "charge" if amount > 0 else "refund",
                    abs(amount),
                    a["currency"],
                    a["shopper_id"],
                    receipt_id=a["receipt_id"],
                )
            )
        return made

    # ------------------------------------------------------------------ settling (thread)

    def settle_pending(self) -> int:
        """Ask the provider about every pending payment; returns how many were settled."""
        if self.provider is None:
            return 0
        provider = self.provider
        settled = 0
        with self._settle_lock:  # one settler at a time (thread, tests, shutdown)
            pending: list[dict[str, Any]] = self._call(self.store.pending_payments)
            for row in pending:
                key = row["idempotency_key"]
                self._call(partial(self.store.payment_attempted, key, self._clock_ms()))
                pay = provider.charge if row["kind"] == "charge" else provider.refund
                try:
                    answer = pay(key, int(row["amount_minor"]), row["currency"], row["shopper_id"])
                except PaymentUnavailable as exc:
                    log.warning("payment %s not settled yet (will retry): %s", key, exc)
                    self._call(
                        partial(self.store.note_payment_failure, key, str(exc), self._clock_ms())
                    )
                    continue
                self._call(
                    partial(
                        self.store.finish_payment,
                        key,
                        answer.status,
                        answer.provider_ref,
                        answer.detail,
                        self._clock_ms(),
                    )
                )
                if answer.status == "declined":
                    log.warning("payment %s declined: %s", key, answer.detail)
                settled += 1
        return settled

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self.provider is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="payments", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(RETRY_S)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.settle_pending()
            except Exception:  # a bug of ours: keep the evidence, keep running
                log.exception("settling payments failed")
