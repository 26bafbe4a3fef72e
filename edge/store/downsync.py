"""Down-sync bookkeeping: which version of each document from HQ runs, which were
looked at, and every outcome, each reported to HQ through the outbox in the same
transaction (``sync_report`` rows, stream ``sync``).  Mixed into ``Store``.

A price list from HQ is applied here in ONE transaction with its version row, so
a gateway that dies half-way runs either the old prices or all the new ones.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cloud_sync.wire import KIND_SYNC_REPORT, STREAM_SYNC
from edge.store.prices import Prices

#: Keep the running body as it is (only the outcome changes).
KEEP = object()


class DownSyncState(Prices):
    def sync_seen(self) -> dict[str, int]:
        """Per kind: the newest version looked at (the fetcher asks for newer ones)."""
        with self.reading():
            rows = self.db.conn.execute("SELECT kind, seen_version FROM sync_state").fetchall()
        return {str(kind): int(version) for kind, version in rows}

    def sync_running(self) -> dict[str, tuple[int, dict[str, Any]]]:
        """Per kind: the version from HQ that runs now and its body (kinds that run
        the local files are absent)."""
        with self.reading():
            rows = self.db.conn.execute(
                "SELECT kind, running_version, running_body FROM sync_state"
                " WHERE running_version IS NOT NULL"
            ).fetchall()
        return {str(k): (int(v), json.loads(body)) for k, v, body in rows}

    def sync_state(self) -> list[dict[str, Any]]:
        """Every kind with its running and last seen version and its last outcome."""
        with self.reading():
            return list(
                self.db.query(
                    "SELECT s.kind, s.running_version, s.seen_version, s.updated_ms,"
                    " h.version AS last_version, h.status AS last_status,"
                    " h.reason AS last_reason FROM sync_state s LEFT JOIN sync_history h"
                    " ON h.id = (SELECT max(id) FROM sync_history WHERE kind = s.kind)"
                    " ORDER BY s.kind"
                )
            )

    def sync_history(self, limit: int = 100) -> list[dict[str, Any]]:
        with self.reading():
            return list(
                self.db.query(
                    "SELECT kind, version, status, reason, ts_ms FROM sync_history"
                    " ORDER BY id DESC LIMIT ?",
                    (limit,),
                )
            )

    def record_sync(
        self,
        kind: str,
        version: int,
        status: str,
        reason: str,
        ts: int,
        running: tuple[int | None, Mapping[str, Any] | None] | object = KEEP,
    ) -> None:
        """An outcome (applied, refused, rolled_back) and, when ``running`` is given,
        the (version, body) that runs now; reported to HQ in the same transaction."""
        with self.transaction():
            self._record_sync(kind, version, status, reason, ts, running)

    def apply_prices(
        self,
        version: int,
        prices: Mapping[str, tuple[int, int]],
        body: Mapping[str, Any],
        ts: int,
        by: str = "hq",
    ) -> None:
        """HQ's price list ``version``: barcode -> (new, previous) price, every change
        and the version row in ONE transaction."""
        with self.transaction():
            for barcode, (price_minor, previous_minor) in sorted(prices.items()):
                if price_minor != previous_minor:
                    self._set_price(barcode, price_minor, previous_minor, ts, by)
            changed = sum(1 for new, old in prices.values() if new != old)
            self._record_sync(
                "prices", version, "applied", f"{changed} price(s) changed", ts, (version, body)
            )

    def _record_sync(
        self,
        kind: str,
        version: int,
        status: str,
        reason: str,
        ts: int,
        running: tuple[int | None, Mapping[str, Any] | None] | object,
    ) -> None:
        conn = self.db.conn
        conn.execute(
            "INSERT INTO sync_state (kind, seen_version, updated_ms) VALUES (?, ?, ?)"
            " ON CONFLICT(kind) DO UPDATE SET"
            " seen_version = max(seen_version, excluded.seen_version),"
            " updated_ms = excluded.updated_ms",
            (kind, version, ts),
        )
        if running is not KEEP:
            assert isinstance(running, tuple)
            run_version, run_body = running
            conn.execute(
                "UPDATE sync_state SET running_version = ?, running_body = ? WHERE kind = ?",
                (
                    run_version,
                    None if run_body is None else json.dumps(run_body, sort_keys=True),
                    kind,
                ),
            )
        conn.execute(
            "INSERT INTO sync_history (kind, version, status, reason, ts_ms)"
            " VALUES (?, ?, ?, ?, ?)",
            (kind, version, status, reason, ts),
        )
        row = conn.execute(
            "SELECT running_version FROM sync_state WHERE kind = ?", (kind,)
        ).fetchone()
        self.enqueue(
            STREAM_SYNC,
            KIND_SYNC_REPORT,
            {
                "kind": kind,
                "version": version,
                "status": status,
                "reason": reason[:2000],
                "running_version": row[0],
            },
            ts_ms=ts,
        )
