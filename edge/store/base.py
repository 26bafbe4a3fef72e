"""The connection, transactions and event rows that every part of the Store shares."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import sqlite_utils
from ulid import ULID


def new_event_id() -> str:
    return str(ULID())


class StoreBase:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self._lock = threading.RLock()

    def close(self) -> None:
        self.db.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            conn = self.db.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Serialise readers that share this connection across threads (the API)."""
        with self._lock:
            yield

    def enqueue(
        self,
        stream: str,
        kind: str,
        payload: dict[str, Any],
        *,
        ts_ms: int,
        event_id: str | None = None,
        cls: Literal["money", "state", "telemetry"] | None = None,
    ) -> str:
        """An outbox row for HQ, inside the caller's transaction (``edge.store.outbox``
        implements it; declared here so that every table mixin can report to HQ)."""
        raise NotImplementedError

    def _x(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> None:
        self.db.conn.execute(sql, params)

    def _event(
        self, kind: str, ts: int, device_id: str | None, session: str | None, body: dict[str, Any]
    ) -> str:
        event_id = new_event_id()
        self._x(
            "INSERT INTO events (event_id, ts_ms, kind, device_id, session_token, body)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (event_id, ts, kind, device_id, session, json.dumps(body, sort_keys=True)),
        )
        return event_id

    def _children(self, sql: str, keys: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Rows of a child table for many parents in one query (``sql`` has ``IN ({})``
        and selects the parent key first), by parent key, without that key."""
        out: dict[str, list[dict[str, Any]]] = {}
        if not keys:
            return out
        cursor = self.db.conn.execute(sql.format(",".join("?" * len(keys))), keys)
        names = [d[0] for d in cursor.description]
        for row in cursor:
            out.setdefault(row[0], []).append(dict(zip(names[1:], row[1:], strict=True)))
        return out


def where_clause(
    equal: dict[str, Any], key: str = "", keys: list[str] | None = None
) -> tuple[str, tuple[Any, ...]]:
    """A WHERE clause: each column of ``equal`` whose value is not None equals it, and
    ``key`` is one of ``keys`` when those are given (none given: nothing matches)."""
    terms = [f"{column} = ?" for column, value in equal.items() if value is not None]
    params: list[Any] = [value for value in equal.values() if value is not None]
    if keys is not None:
        terms.append(f"{key} IN ({','.join('?' * len(keys))})" if keys else "0")
        params += keys
    return ("WHERE " + " AND ".join(terms) if terms else ""), tuple(params)
