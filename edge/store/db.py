"""Opening the database: WAL, synchronous=FULL (money lives here), numbered migrations."""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from importlib import resources
from pathlib import Path

import sqlite_utils

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def _migrations() -> list[tuple[int, str, str]]:
    folder = resources.files("edge.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [n for n, _, _ in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise RuntimeError(f"migrations must be numbered 0001.. without gaps, found {numbers}")
    return found


def connect(path: Path, *, readonly: bool = False) -> sqlite_utils.Database:
    """Open the store; the writer (``readonly=False``) also applies pending migrations."""
    if not readonly:
        path.parent.mkdir(parents=True, exist_ok=True)
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA foreign_keys = ON")
    db = sqlite_utils.Database(conn)
    if not readonly:
        db.enable_wal()
        # enable_wal() leaves synchronous alone; receipts are money, so be strict.
        conn.execute("PRAGMA synchronous = FULL")
        migrate(db)
    return db


def migrate(db: sqlite_utils.Database) -> list[int]:
    conn = db.conn
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms INTEGER NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    applied = []
    for number, name, sql in _migrations():
        if number in done:
            continue
        log.info("applying migration %s", name)
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?, ?, ?)",
                (number, name, int(time.time() * 1000)),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        applied.append(number)
    return applied


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (our migrations hold no triggers)."""
    out, buf = [], []
    for line in sql.splitlines():
        if line.strip().startswith("--"):
            continue
        buf.append(line)
        if sqlite3.complete_statement("\n".join(buf)):
            out.append("\n".join(buf).strip())
            buf = []
    if "\n".join(buf).strip():
        raise RuntimeError("migration ends with an incomplete statement")
    return out
