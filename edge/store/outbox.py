"""The outbox: rows for HQ, written in the same transaction as the domain rows.

* :meth:`Outbox.enqueue` adds a row inside the caller's transaction, so a
  receipt and its outbox row are committed together or not at all.
* The sender (``cloud_sync.sender``, through its ``Outbox`` protocol) reads
  unsent rows in ``seq`` order (so order is kept per stream), and marks rows
  sent only with the ids HQ acknowledged.
* A disk budget bounds what the outbox holds: past it, rows already sent go
  first, then unsent telemetry, then unsent state rows, each oldest first, with
  counters.  Money (transactions, refunds) is never evicted: if only money is
  left, the outbox grows past its budget and says so.

Mixed into ``Store``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Sequence
from typing import Any, Literal

from cloud_sync.wire import MONEY_KINDS, Backlog, OutboxEvent
from edge.store.base import StoreBase, new_event_id

log = logging.getLogger(__name__)

OutboxClass = Literal["money", "state", "telemetry"]

#: Default disk budget of the outbox (rows' payload plus a per-row overhead).
DEFAULT_BUDGET_BYTES = 64 * 1024 * 1024
#: What a row costs beyond its payload: ids, columns, two index entries (an estimate).
ROW_OVERHEAD_BYTES = 160
#: Eviction frees down to this share of the budget, so that it runs in bursts.
LOW_WATER = 0.9
#: Kinds that are telemetry unless the caller says otherwise.
TELEMETRY_KINDS = frozenset({"telemetry", "heartbeat", "temperature"})

# Eviction order; money is absent on purpose.
_EVICTION_ORDER: tuple[OutboxClass, ...] = ("telemetry", "state")
_CHUNK = 500
#: Tries of the sender's writes while the gateway's writer keeps the database busy.
_BUSY_TRIES = 6


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def class_of(kind: str) -> OutboxClass:
    if kind in MONEY_KINDS:
        return "money"
    if kind in TELEMETRY_KINDS:
        return "telemetry"
    return "state"


def _now_ms() -> int:
    return int(time.time() * 1000)


class Outbox(StoreBase):
    _outbox_budget: int = DEFAULT_BUDGET_BYTES
    _over_budget_warned = False

    def set_outbox_budget(self, budget_bytes: int) -> None:
        if budget_bytes <= 0:
            raise ValueError("the outbox budget must be positive")
        self._outbox_budget = budget_bytes

    # ------------------------------------------------------------------ writing

    def enqueue(
        self,
        stream: str,
        kind: str,
        payload: dict[str, Any],
        *,
        ts_ms: int,
        event_id: str | None = None,
        cls: OutboxClass | None = None,
    ) -> str:
        """Add a row for HQ.  Call it inside ``with self.transaction():`` with the
        domain rows it reports; returns its event id."""
        conn = self.db.conn
        if not conn.in_transaction:
            raise RuntimeError("enqueue() belongs inside the transaction of the rows it reports")
        cls = cls or class_of(kind)
        if kind in MONEY_KINDS and cls != "money":
            raise ValueError(f"{kind!r} is money; it cannot be enqueued as {cls!r}")
        event_id = event_id or new_event_id()
        body = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        size = len(body.encode("utf-8")) + ROW_OVERHEAD_BYTES
        self._x(
            "INSERT INTO outbox (event_id, stream, kind, class, ts_ms, created_ms, payload,"
            " size_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (event_id, stream, kind, cls, ts_ms, _now_ms(), body, size),
        )
        held = self._bump("held_bytes", size)
        if held > self._outbox_budget:
            self._evict(held)
        return event_id

    def _bump(self, name: str, delta: int) -> int:
        row = self.db.conn.execute(
            "INSERT INTO outbox_counters (name, value) VALUES (?, ?) ON CONFLICT(name)"
            " DO UPDATE SET value = value + excluded.value RETURNING value",
            (name, delta),
        ).fetchone()
        return int(row[0])

    def _raise_to(self, name: str, value: int) -> None:
        self._x(
            "INSERT INTO outbox_counters (name, value) VALUES (?, ?) ON CONFLICT(name)"
            " DO UPDATE SET value = max(value, excluded.value)",
            (name, value),
        )

    def _counters(self) -> dict[str, int]:
        return {
            str(name): int(value)
            for name, value in self.db.conn.execute("SELECT name, value FROM outbox_counters")
        }

    def _evict(self, held: int) -> None:
        """Free space down to the low-water mark (inside a transaction)."""
        target = int(self._outbox_budget * LOW_WATER)
        held -= self._delete_oldest("sent_ms IS NOT NULL", held - target, None)
        for cls in _EVICTION_ORDER:
            if held <= target:
                break
            held -= self._delete_oldest("sent_ms IS NULL AND class = ?", held - target, cls)
        if held > self._outbox_budget:
            if not self._over_budget_warned:
                log.warning(
                    "outbox holds %d bytes, over its budget of %d, and only money is left"
                    " unsent: money is never evicted",
                    held,
                    self._outbox_budget,
                )
                self._over_budget_warned = True
        else:
            self._over_budget_warned = False

    def _delete_oldest(self, where: str, need: int, cls: str | None) -> int:
        """Delete the oldest rows matching ``where`` until ``need`` bytes are freed."""
        conn = self.db.conn
        params: tuple[Any, ...] = (cls,) if cls is not None else ()
        freed = rows = 0
        while freed < need:
            chunk = conn.execute(
                f"SELECT seq, size_bytes FROM outbox WHERE {where} ORDER BY seq LIMIT ?",
                (*params, _CHUNK),
            ).fetchall()
            if not chunk:
                break
            last = chunk[-1][0]
            part = 0
            for seq, size in chunk:
                part += size
                rows += 1
                if freed + part >= need:
                    last = seq
                    break
            conn.execute(f"DELETE FROM outbox WHERE {where} AND seq <= ?", (*params, last))
            freed += part
        if freed:
            self._bump("held_bytes", -freed)
            if cls is not None:  # unsent rows: that is an eviction, counted
                self._bump("evicted_rows", rows)
                self._bump("evicted_bytes", freed)
                self._bump(f"evicted_{cls}", rows)
                log.warning("outbox over budget: evicted %d unsent %s rows", rows, cls)
        return freed

    # ------------------------------------------------------------------ the sender's side

    def outbox_pending(
        self, limit: int, max_bytes: int, stream: str | None = None
    ) -> list[OutboxEvent]:
        """The oldest unsent rows in ``seq`` order (at least one if any, then up to
        ``limit`` rows and ``max_bytes``), of one stream or of all."""
        extra, params = ("AND stream = ?", (stream, limit)) if stream else ("", (limit,))
        with self.reading():
            rows = self.db.conn.execute(
                "SELECT seq, event_id, stream, kind, ts_ms, created_ms, payload, size_bytes"
                f" FROM outbox WHERE sent_ms IS NULL {extra} ORDER BY seq LIMIT ?",
                params,
            ).fetchall()
        out: list[OutboxEvent] = []
        total = 0
        for seq, event_id, stream_, kind, ts_ms, created_ms, payload, size in rows:
            total += size
            if out and total > max_bytes:
                break
            out.append(
                OutboxEvent(
                    event_id=event_id,
                    stream=stream_,
                    kind=kind,
                    seq=seq,
                    ts_ms=ts_ms,
                    created_ms=created_ms,
                    payload=json.loads(payload),
                )
            )
        return out

    def outbox_mark_sent(self, event_ids: Sequence[str], sent_ms: int) -> int:
        """Mark the rows HQ acknowledged; returns how many were unsent until now.

        The sender's connection waits for the gateway's writer; a writer that keeps
        the database busy past the busy timeout makes it try again a few times (rows
        left unmarked would only be sent again, and HQ drops them as duplicates)."""
        for attempt in range(_BUSY_TRIES):
            try:
                return self._mark_sent(event_ids, sent_ms)
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or attempt == _BUSY_TRIES - 1:
                    raise
                log.info("outbox: database busy, marking %d rows sent again", len(event_ids))
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _mark_sent(self, event_ids: Sequence[str], sent_ms: int) -> int:
        marked = 0
        with self.transaction():
            for start in range(0, len(event_ids), _CHUNK):
                ids = list(event_ids[start : start + _CHUNK])
                marks = ",".join("?" * len(ids))
                row = self.db.conn.execute(
                    f"SELECT max(seq) FROM outbox WHERE event_id IN ({marks})", ids
                ).fetchone()
                cur = self.db.conn.execute(
                    "UPDATE outbox SET sent_ms = ? WHERE sent_ms IS NULL"
                    f" AND event_id IN ({marks})",
                    (sent_ms, *ids),
                )
                marked += cur.rowcount
                if row[0] is not None:
                    self._raise_to("acked_seq", int(row[0]))
        return marked

    def outbox_maintain(self, keep_sent_ms: int, now_ms: int | None = None) -> int:
        """Drop sent rows older than ``keep_sent_ms`` and enforce the budget; returns
        the rows dropped as sent.  Housekeeping: while the gateway's writer keeps the
        database busy it is put off to the next round (the writer enforces the budget
        on every row it adds anyway)."""
        try:
            return self._maintain(keep_sent_ms, now_ms)
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
            log.info("outbox: database busy, maintenance put off")
            return 0

    def _maintain(self, keep_sent_ms: int, now_ms: int | None) -> int:
        now_ms = _now_ms() if now_ms is None else now_ms
        with self.transaction():
            conn = self.db.conn
            row = conn.execute(
                "SELECT count(*), coalesce(sum(size_bytes), 0) FROM outbox"
                " WHERE sent_ms IS NOT NULL AND sent_ms < ?",
                (now_ms - keep_sent_ms,),
            ).fetchone()
            if row[0]:
                conn.execute(
                    "DELETE FROM outbox WHERE sent_ms IS NOT NULL AND sent_ms < ?",
                    (now_ms - keep_sent_ms,),
                )
                self._bump("held_bytes", -int(row[1]))
            held = self._counters().get("held_bytes", 0)
            if held > self._outbox_budget:
                self._evict(held)
        return int(row[0])

    def outbox_backlog(self, now_ms: int | None = None) -> Backlog:
        now_ms = _now_ms() if now_ms is None else now_ms
        with self.reading():
            rows, size, oldest = self.db.conn.execute(
                "SELECT count(*), coalesce(sum(size_bytes), 0), min(created_ms) FROM outbox"
                " WHERE sent_ms IS NULL"
            ).fetchone()
            counters = self._counters()
        return Backlog(
            rows=rows,
            bytes=size,
            oldest_unsent_age_s=None if oldest is None else max(0, now_ms - oldest) / 1000,
            last_acked_seq=counters.get("acked_seq"),
            evicted_rows=counters.get("evicted_rows", 0),
            evicted_bytes=counters.get("evicted_bytes", 0),
            held_bytes=counters.get("held_bytes", 0),
            budget_bytes=self._outbox_budget,
        )

    def outbox_counters(self) -> dict[str, int]:
        """held_bytes, evicted_rows, evicted_bytes, evicted_{class}, acked_seq."""
        with self.reading():
            return self._counters()

    def outbox_rows(
        self, *, kind: str | None = None, unsent_only: bool = False
    ) -> list[dict[str, Any]]:
        """Every row the outbox still holds (for the API, tests and audits)."""
        where = ["1 = 1"]
        params: list[Any] = []
        if kind:
            where.append("kind = ?")
            params.append(kind)
        if unsent_only:
            where.append("sent_ms IS NULL")
        with self.reading():
            rows = list(
                self.db.query(
                    "SELECT seq, event_id, stream, kind, class, ts_ms, created_ms, payload,"
                    f" size_bytes, sent_ms FROM outbox WHERE {' AND '.join(where)} ORDER BY seq",
                    params,
                )
            )
        return [{**r, "payload": json.loads(r["payload"])} for r in rows]
