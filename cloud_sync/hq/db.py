"""HQ's database: SQLite by default, PostgreSQL by URL (psycopg 3), one small interface.

The SQL is portable (``INSERT ... ON CONFLICT ... DO NOTHING``/``DO UPDATE``,
``BIGINT``, ``DOUBLE PRECISION``, ``LIMIT``/``OFFSET``); it is written with
``?`` placeholders, which the PostgreSQL path turns into ``%s``.  Every
connection belongs to one thread (the API's worker threads each get their own).

HQ's SQL is here and in :mod:`cloud_sync.hq.sql` (schema, engines, projections).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cloud_sync.hq.sql.engines import Engine, Tx, open_engine
from cloud_sync.hq.sql.projections import project
from cloud_sync.hq.sql.schema import SCHEMA
from cloud_sync.wire import (
    ALL_STORES,
    DOC_KINDS,
    KIND_HEARTBEAT,
    DeviceTelemetryPayload,
    GatewayHeartbeat,
    IngestAck,
    OutboxEvent,
    RejectedEvent,
    SyncDocument,
    SyncKindState,
)

log = logging.getLogger(__name__)

#: Tries of one ingest transaction that meets a lock conflict.
_RETRIES = 5

# --------------------------------------------------------------------------- HQ's data


@dataclass(frozen=True, slots=True)
class StoreRow:
    store_id: str
    name: str | None
    created_ms: int


@dataclass(frozen=True, slots=True)
class FleetRow:
    store_id: str
    name: str | None
    received_ms: int | None
    sent_ms: int | None
    backlog_rows: int | None
    backlog_bytes: int | None
    oldest_unsent_age_s: float | None
    last_acked_seq: int | None
    evicted_rows: int | None
    versions: dict[str, str]
    devices: dict[str, int]
    transactions: int
    alerts_open: int = 0


@dataclass(frozen=True, slots=True)
class StockRow:
    store_id: str
    barcode: str
    name: str | None
    quantity: int
    low_threshold: int | None
    ts_ms: int


class HqDatabase:
    """Every read and write of HQ's tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        with engine.transaction() as tx:
            for statement in SCHEMA:
                tx.execute(statement)

    @classmethod
    def open(cls, target: str | Path) -> HqDatabase:
        return cls(open_engine(target))

    def close(self) -> None:
        self.engine.close()

    # ------------------------------------------------------------------ stores and keys

    def add_store(self, store_id: str, name: str | None, key_hash: str, now_ms: int) -> None:
        with self.engine.transaction() as tx:
            if tx.query("SELECT 1 FROM hq_stores WHERE store_id = ?", (store_id,)):
                raise ValueError(f"store {store_id!r} already exists")
            tx.execute(
                "INSERT INTO hq_stores (store_id, name, key_hash, created_ms) VALUES (?, ?, ?, ?)",
                (store_id, name, key_hash, now_ms),
            )

    def set_key(self, store_id: str, key_hash: str) -> None:
        with self.engine.transaction() as tx:
            if not tx.execute(
                "UPDATE hq_stores SET key_hash = ? WHERE store_id = ?", (key_hash, store_id)
            ):
                raise LookupError(f"no store {store_id!r}")

    def store_for_key(self, key_hash: str) -> str | None:
        with self.engine.transaction() as tx:
            rows = tx.query("SELECT store_id FROM hq_stores WHERE key_hash = ?", (key_hash,))
        return str(rows[0][0]) if rows else None

    def stores(self) -> list[StoreRow]:
        with self.engine.transaction() as tx:
            rows = tx.query("SELECT store_id, name, created_ms FROM hq_stores ORDER BY store_id")
        return [StoreRow(str(s), n, int(c)) for s, n, c in rows]

    # ------------------------------------------------------------------ ingest

    def ingest(self, store_id: str, events: Sequence[OutboxEvent], now_ms: int) -> IngestAck:
        """Store each (store, event id) once, in ONE transaction; project transactions
        and stock levels.  Every event id of the batch is acknowledged.

        Rows are written in event-id order, so that concurrent retries of overlapping
        batches take their locks in one order; a lock conflict is retried."""
        ordered = sorted(events, key=lambda e: e.event_id)
        for attempt in range(_RETRIES):
            try:
                stored, duplicates, rejected = self._ingest(store_id, ordered, now_ms)
                break
            except Exception as exc:
                if attempt == _RETRIES - 1 or not self.engine.is_retryable(exc):
                    raise
                log.info("hq: ingest conflict (%s); retrying", type(exc).__name__)
                time.sleep(random.uniform(0.005, 0.02) * 2**attempt)
        return IngestAck(
            acked=[e.event_id for e in events],
            stored=stored,
            duplicates=duplicates,
            rejected=rejected,
        )

    def _ingest(
        self, store_id: str, events: Sequence[OutboxEvent], now_ms: int
    ) -> tuple[int, int, list[RejectedEvent]]:
        rejected: list[RejectedEvent] = []
        with self.engine.transaction() as tx:
            inserted = self._insert_events(tx, store_id, events, now_ms)
            fresh: list[OutboxEvent] = []
            for event in events:
                if event.event_id in inserted:
                    inserted.discard(event.event_id)  # a second copy in the batch: a duplicate
                    fresh.append(event)
            # A device's heartbeats are snapshots: only its newest in the batch is projected.
            beats: dict[str, OutboxEvent] = {}
            for event in fresh:
                try:
                    if event.kind == KIND_HEARTBEAT:
                        device = DeviceTelemetryPayload.model_validate(event.payload).device_id
                        if device not in beats or event.ts_ms >= beats[device].ts_ms:
                            beats[device] = event
                    else:
                        project(tx, store_id, event, now_ms)
                except ValidationError as exc:
                    reason = f"{event.kind} payload: {exc.errors()[0]['msg']}"
                    rejected.append(RejectedEvent(event_id=event.event_id, reason=reason))
                    tx.execute(
                        "INSERT INTO hq_rejected (store_id, event_id, kind, reason, received_ms)"
                        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (store_id, event_id) DO NOTHING",
                        (store_id, event.event_id, event.kind, reason, now_ms),
                    )
            for event in beats.values():
                project(tx, store_id, event, now_ms)
        return len(fresh), len(events) - len(fresh), rejected

    @staticmethod
    def _insert_events(
        tx: Tx, store_id: str, events: Sequence[OutboxEvent], now_ms: int
    ) -> set[str]:
        """Insert the events HQ does not hold yet; returns the ids inserted now.  One
        multi-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` per 500 events: few
        round trips, and exact under concurrent retries (PostgreSQL makes the second
        inserter of an id wait for the first and then skip it)."""
        inserted: set[str] = set()
        for start in range(0, len(events), 500):
            chunk = events[start : start + 500]
            rows = ", ".join("(?, ?, ?, ?, ?, ?, ?, ?, ?)" for _ in chunk)
            params: list[Any] = []
            for e in chunk:
                params.extend(
                    (
                        store_id,
                        e.event_id,
                        e.stream,
                        e.kind,
                        e.seq,
                        e.ts_ms,
                        e.created_ms,
                        now_ms,
                        json.dumps(e.payload, sort_keys=True),
                    )
                )
            got = tx.query(
                "INSERT INTO hq_events (store_id, event_id, stream, kind, seq, ts_ms,"
                f" created_ms, received_ms, payload) VALUES {rows}"
                " ON CONFLICT (store_id, event_id) DO NOTHING RETURNING event_id",
                params,
            )
            inserted.update(str(r[0]) for r in got)
        return inserted

    def record_heartbeat(self, heartbeat: GatewayHeartbeat, now_ms: int) -> None:
        b = heartbeat.backlog
        with self.engine.transaction() as tx:
            tx.execute(
                "INSERT INTO hq_gateways (store_id, received_ms, sent_ms, backlog_rows,"
                " backlog_bytes, oldest_unsent_age_s, last_acked_seq, evicted_rows, versions,"
                " devices) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (store_id)"
                " DO UPDATE SET received_ms = excluded.received_ms,"
                " sent_ms = excluded.sent_ms, backlog_rows = excluded.backlog_rows,"
                " backlog_bytes = excluded.backlog_bytes,"
                " oldest_unsent_age_s = excluded.oldest_unsent_age_s,"
                " last_acked_seq = excluded.last_acked_seq,"
                " evicted_rows = excluded.evicted_rows, versions = excluded.versions,"
                " devices = excluded.devices",
                (
                    heartbeat.store_id,
                    now_ms,
                    heartbeat.sent_ms,
                    b.rows,
                    b.bytes,
                    b.oldest_unsent_age_s,
                    b.last_acked_seq,
                    b.evicted_rows,
                    json.dumps(heartbeat.versions, sort_keys=True),
                    json.dumps(heartbeat.devices, sort_keys=True),
                ),
            )

    # ------------------------------------------------------------------ reading

    def fleet(self) -> list[FleetRow]:
        with self.engine.transaction() as tx:
            rows = tx.query(
                "SELECT s.store_id, s.name, g.received_ms, g.sent_ms, g.backlog_rows,"
                " g.backlog_bytes, g.oldest_unsent_age_s, g.last_acked_seq, g.evicted_rows,"
                " g.versions, g.devices,"
                " (SELECT count(*) FROM hq_transactions t WHERE t.store_id = s.store_id),"
                " (SELECT count(*) FROM hq_alerts a WHERE a.store_id = s.store_id"
                " AND a.state IN ('open', 'acked'))"
                " FROM hq_stores s LEFT JOIN hq_gateways g ON g.store_id = s.store_id"
                " ORDER BY s.store_id"
            )
        return [
            FleetRow(
                store_id=r[0],
                name=r[1],
                received_ms=r[2],
                sent_ms=r[3],
                backlog_rows=r[4],
                backlog_bytes=r[5],
                oldest_unsent_age_s=r[6],
                last_acked_seq=r[7],
                evicted_rows=r[8],
                versions=json.loads(r[9]) if r[9] else {},
                devices=json.loads(r[10]) if r[10] else {},
                transactions=int(r[11]),
                alerts_open=int(r[12]),
            )
            for r in rows
        ]

    def transactions(
        self, store_id: str | None, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of transactions (oldest first) and how many there are in all."""
        where, params = ("WHERE store_id = ?", [store_id]) if store_id else ("", [])
        with self.engine.transaction() as tx:
            total = tx.query(f"SELECT count(*) FROM hq_transactions {where}", params)[0][0]
            rows = tx.query(
                "SELECT store_id, event_id, receipt_id, session_token, currency, total_minor,"
                " issued_ms, lines, received_ms, (SELECT coalesce(sum(a.amount_minor), 0)"
                " FROM hq_adjustments a WHERE a.store_id = t.store_id"
                f" AND a.receipt_id = t.receipt_id) FROM hq_transactions t {where}"
                " ORDER BY issued_ms, store_id, event_id LIMIT ? OFFSET ?",
                [*params, limit, offset],
            )
        items = [
            {
                "store_id": r[0],
                "event_id": r[1],
                "receipt_id": r[2],
                "session_token": r[3],
                "currency": r[4],
                "total_minor": int(r[5]),
                "issued_ms": int(r[6]),
                "lines": json.loads(r[7]),
                "received_ms": int(r[8]),
                "adjusted_total_minor": int(r[5]) + int(r[9]),
            }
            for r in rows
        ]
        return items, int(total)

    def event_count(self, store_id: str, kind: str | None = None) -> int:
        extra, params = (" AND kind = ?", (store_id, kind)) if kind else ("", (store_id,))
        with self.engine.transaction() as tx:
            return int(
                tx.query(f"SELECT count(*) FROM hq_events WHERE store_id = ?{extra}", params)[0][0]
            )

    def stock(self, barcode: str | None = None) -> list[StockRow]:
        where, params = ("WHERE barcode = ?", (barcode,)) if barcode else ("", ())
        with self.engine.transaction() as tx:
            rows = tx.query(
                "SELECT store_id, barcode, name, quantity, low_threshold, ts_ms FROM hq_stock"
                f" {where} ORDER BY barcode, store_id",
                params,
            )
        return [
            StockRow(r[0], r[1], r[2], int(r[3]), None if r[4] is None else int(r[4]), int(r[5]))
            for r in rows
        ]

    def alerts(
        self, store_id: str | None = None, active_only: bool = False
    ) -> list[dict[str, Any]]:
        clauses, params = [], []
        if store_id:
            clauses.append("store_id = ?")
            params.append(store_id)
        if active_only:
            clauses.append("state IN ('open', 'acked')")
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        with self.engine.transaction() as tx:
            rows = tx.query(
                "SELECT store_id, alert_id, kind, state, device_id, plate, detail, raised_ms,"
                f" ts_ms FROM hq_alerts {where} ORDER BY raised_ms DESC, alert_id LIMIT 1000",
                params,
            )
        keys = ("store_id", "alert_id", "kind", "state", "device_id", "plate")
        return [
            {
                **dict(zip(keys, r[:6], strict=True)),
                "detail": json.loads(r[6]),
                "raised_ms": int(r[7]),
                "ts_ms": int(r[8]),
            }
            for r in rows
        ]

    def adjustments(self, store_id: str | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE store_id = ?", (store_id,)) if store_id else ("", ())
        with self.engine.transaction() as tx:
            rows = tx.query(
                "SELECT store_id, event_id, kind, adjustment_id, receipt_id, barcode, quantity,"
                f" amount_minor, currency, created_ms FROM hq_adjustments {where}"
                " ORDER BY created_ms, event_id LIMIT 10000",
                params,
            )
        keys = (
            "store_id",
            "event_id",
            "kind",
            "adjustment_id",
            "receipt_id",
            "barcode",
            "quantity",
            "amount_minor",
            "currency",
            "created_ms",
        )
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def devices(self, store_id: str) -> list[dict[str, Any]]:
        with self.engine.transaction() as tx:
            rows = tx.query(
                "SELECT device_id, device_type, state, state_reason, state_ms, firmware,"
                " battery_pct, heartbeat_ms FROM hq_devices WHERE store_id = ?"
                " ORDER BY device_id",
                (store_id,),
            )
        keys = (
            "device_id",
            "device_type",
            "state",
            "state_reason",
            "state_ms",
            "firmware",
            "battery_pct",
            "heartbeat_ms",
        )
        return [dict(zip(keys, r, strict=True)) for r in rows]

    # ------------------------------------------------------------------ down-sync

    def publish(
        self, kind: str, scope: str, body: dict[str, Any], note: str | None, now_ms: int
    ) -> SyncDocument:
        """A new version of ``kind`` for one store (``scope`` = its id) or all (``*``).
        Versions grow per kind across scopes, so one number says what is newer."""
        if kind not in DOC_KINDS:
            raise ValueError(f"unknown document kind {kind!r}")
        text = json.dumps(body, sort_keys=True)
        for _attempt in range(_RETRIES):
            with self.engine.transaction() as tx:
                if scope != ALL_STORES and not tx.query(
                    "SELECT 1 FROM hq_stores WHERE store_id = ?", (scope,)
                ):
                    raise LookupError(f"no store {scope!r}")
                top = tx.query(
                    "SELECT coalesce(max(version), 0) FROM hq_documents WHERE kind = ?", (kind,)
                )[0][0]
                version = int(top) + 1
                if tx.execute(
                    "INSERT INTO hq_documents (kind, version, scope, body, note, published_ms)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, version) DO NOTHING",
                    (kind, version, scope, text, note, now_ms),
                ):
                    return SyncDocument(
                        kind=kind,
                        version=version,
                        scope=scope,
                        published_ms=now_ms,
                        note=note,
                        body=body,
                    )
            time.sleep(random.uniform(0.005, 0.02))  # another publish took it: next number
        raise RuntimeError(f"could not publish {kind}: too many concurrent publishes")

    def changes_for(self, store_id: str, since: dict[str, int]) -> list[SyncDocument]:
        """For each kind, the newest document meant for the store (its own or every
        store's), when it is newer than the version the store has seen."""
        out = []
        with self.engine.transaction() as tx:
            for kind in DOC_KINDS:
                rows = tx.query(
                    "SELECT version, scope, body, note, published_ms FROM hq_documents"
                    " WHERE kind = ? AND scope IN (?, ?) AND version > ?"
                    " ORDER BY version DESC LIMIT 1",
                    (kind, ALL_STORES, store_id, since.get(kind, 0)),
                )
                if rows:
                    version, scope, body, note, published = rows[0]
                    out.append(
                        SyncDocument(
                            kind=kind,
                            version=int(version),
                            scope=scope,
                            published_ms=int(published),
                            note=note,
                            body=json.loads(body),
                        )
                    )
        return out

    def documents(
        self, kind: str | None = None, scope: str | None = None, limit: int = 100
    ) -> list[SyncDocument]:
        clauses, params = [], []
        if kind:
            clauses.append("kind = ?")
            params.append(kind)
        if scope:
            clauses.append("scope = ?")
            params.append(scope)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        with self.engine.transaction() as tx:
            rows = tx.query(
                "SELECT kind, version, scope, body, note, published_ms FROM hq_documents"
                f" {where} ORDER BY published_ms DESC, kind, version DESC LIMIT ?",
                [*params, limit],
            )
        return [
            SyncDocument(
                kind=r[0],
                version=int(r[1]),
                scope=r[2],
                published_ms=int(r[5]),
                note=r[4],
                body=json.loads(r[3]),
            )
            for r in rows
        ]

    def sync_reports(self, store_id: str | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE store_id = ?", (store_id,)) if store_id else ("", ())
        with self.engine.transaction() as tx:
            rows = tx.query(
                "SELECT store_id, kind, version, status, reason, running_version, ts_ms,"
                f" received_ms FROM hq_sync_reports {where}"
                " ORDER BY store_id, kind, version DESC",
                params,
            )
        keys = (
            "store_id",
            "kind",
            "version",
            "status",
            "reason",
            "running_version",
            "ts_ms",
            "received_ms",
        )
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def sync_overview(self) -> dict[str, dict[str, SyncKindState]]:
        """Per store and kind: the newest version published for it, the version its
        gateway runs (from its heartbeat, else its last report) and its last report."""
        with self.engine.transaction() as tx:
            stores = [str(r[0]) for r in tx.query("SELECT store_id FROM hq_stores")]
            latest = tx.query(
                "SELECT kind, scope, max(version) FROM hq_documents GROUP BY kind, scope"
            )
            reports = tx.query(
                "SELECT store_id, kind, version, status, reason, running_version, ts_ms,"
                " received_ms FROM hq_sync_reports ORDER BY ts_ms, version"
            )
            beats = tx.query("SELECT store_id, versions, received_ms FROM hq_gateways")
        published: dict[tuple[str, str], int] = {(str(k), str(s)): int(v) for k, s, v in latest}
        last: dict[tuple[str, str], tuple[Any, ...]] = {}
        for r in reports:  # oldest first: the newest report of each (store, kind) wins
            last[(str(r[0]), str(r[1]))] = r
        beat_of = {str(s): (json.loads(v) if v else {}, int(at)) for s, v, at in beats}
        out: dict[str, dict[str, SyncKindState]] = {}
        for store in stores:
            kinds: dict[str, SyncKindState] = {}
            for kind in DOC_KINDS:
                mine = [published.get((kind, store)), published.get((kind, ALL_STORES))]
                newest = max((v for v in mine if v is not None), default=None)
                report = last.get((store, kind))
                # What runs: from whichever HQ heard last, the heartbeat or the report.
                versions, beat_ms = beat_of.get(store, ({}, -1))
                beat = versions.get(kind)
                running = int(beat) if beat is not None and str(beat).isdigit() else None
                if report is not None and (beat is None or int(report[7]) > beat_ms):
                    running = None if report[5] is None else int(report[5])
                if newest is None and report is None and running is None:
                    continue
                kinds[kind] = SyncKindState(
                    published=newest,
                    running=running,
                    status=None if report is None else report[3],
                    status_version=None if report is None else int(report[2]),
                    reason=None if report is None else report[4],
                )
            out[store] = kinds
        return out
