"""``storeedge sim fleet``: N light simulated gateways against one HQ, and how many
events per second HQ ingests.

Each simulated gateway is the real outbox (a gateway SQLite database of its own,
``edge.store``) and the real sender (``cloud_sync.sender``: batches, gzip, HTTP,
acks) with synthetic traffic: receipts (money), device heartbeats and fridge
readings (telemetry) and device state changes, in about the mix of a store.
There is no MQTT and no checkout engine: this measures the path to HQ.

Two phases:

1. **Backlog**: every store comes back from an outage holding ``backlog`` unsent
   events; all senders start at once and the clock runs until every outbox is
   empty.  ``events_per_s`` = events / seconds: what HQ ingests flat out.
2. **Steady** (``seconds`` > 0): every store writes ``rate`` events per second for
   ``seconds``; reports what HQ acknowledged per second meanwhile and the backlog
   left at the end (did HQ keep up?).

HQ runs as its own process (``storeedge hq``) on a SQLite file or a PostgreSQL
URL (``hq_db``), or is one already running (``hq_url``, with
``STOREEDGE_HQ_ADMIN_TOKEN`` to create the stores).  The gateways run in
``processes`` worker processes, each with a sender thread per store.  At the end
HQ's own count of the run's events is checked against what was written: none
missing, none twice.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import httpx

from cloud_sync.hq.auth import ADMIN_TOKEN_ENV
from cloud_sync.sender import Sender, SenderConfig
from edge.mqtt.broker import free_port
from edge.store.repo import Store

#: Events written per transaction when the backlog is laid down.
_CHUNK = 500


@dataclass(frozen=True)
class FleetOptions:
    stores: int = 10
    backlog: int = 5000
    seconds: float = 10.0
    rate: float = 100.0
    processes: int = 0  # 0: one per CPU, at most one per store
    batch: int = 500
    hq_url: str | None = None
    hq_db: str | None = None  # SQLite path or postgresql:// URL; default: a temp file
    seed: int = 0


@dataclass
class WorkerResult:
    worker: int
    stores: int
    backlog_events: int
    drained_at: float  # wall clock (time.time()) when its last outbox emptied
    steady_written: int = 0
    steady_acked: int = 0
    steady_backlog_left: int = 0
    batches: int = 0
    failures: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- traffic


class Traffic:
    """Synthetic store events, about the mix of a real store."""

    def __init__(self, store_no: int, seed: int) -> None:
        self.rng = random.Random(seed * 100_003 + store_no)
        self.n = 0

    def write(self, store: Store, count: int, ts_ms: int) -> None:
        """``count`` events in one transaction."""
        rng = self.rng
        with store.transaction():
            for _ in range(count):
                self.n += 1
                roll = rng.random()
                if roll < 0.10:
                    qty = rng.randint(1, 3)
                    price = rng.choice((99, 119, 249, 399))
                    store.enqueue(
                        "transactions",
                        "transaction",
                        {
                            "receipt_id": f"r{self.n}-{secrets.token_hex(6)}",
                            "session_token": f"tok-{self.n}",
                            "exit_gate": "gate-out",
                            "currency": "EUR",
                            "total_minor": qty * price,
                            "issued_ms": ts_ms,
                            "lines": [
                                {
                                    "barcode": "4000417025005",
                                    "name": "mineral water",
                                    "quantity": qty,
                                    "unit_price_minor": price,
                                    "line_total_minor": qty * price,
                                }
                            ],
                        },
                        ts_ms=ts_ms,
                    )
                elif roll < 0.70:
                    store.enqueue(
                        "telemetry",
                        "heartbeat",
                        {
                            "device_id": f"shelf-{rng.randrange(30)}",
                            "device_type": "shelf",
                            "uptime_s": self.n,
                            "firmware": "1.4.2",
                            "battery_pct": None,
                            "rssi_dbm": -rng.randint(40, 80),
                        },
                        ts_ms=ts_ms,
                    )
                elif roll < 0.90:
                    store.enqueue(
                        "telemetry",
                        "temperature",
                        {
                            "device_id": f"fridge-{rng.randrange(4)}",
                            "celsius": round(rng.uniform(2, 6), 2),
                            "door_open": False,
                        },
                        ts_ms=ts_ms,
                    )
                else:
                    store.enqueue(
                        "devices",
                        "device_state",
                        {
                            "device_id": f"gate-{rng.randrange(2)}",
                            "device_type": "gate",
                            "state": rng.choice(("online", "offline")),
                            "reason": "simulated",
                        },
                        ts_ms=ts_ms,
                    )


# --------------------------------------------------------------------------- one worker


def _worker(
    worker: int,
    stores: list[tuple[str, str]],
    folder: str,
    opts: FleetOptions,
    hq_url: str,
    ready: Any,
    go: EventType,
    results: Any,
) -> None:
    """Runs in its own process: its stores' outboxes and senders."""
    result = WorkerResult(worker, len(stores), 0, 0.0)
    outboxes: list[tuple[Store, Store, Traffic]] = []
    senders: list[Sender] = []
    try:
        for store_id, _key in stores:
            path = Path(folder) / f"{store_id}.db"
            writer = Store.open(path)
            writer.set_outbox_budget(1 << 40)  # the bench measures HQ, not eviction
            traffic = Traffic(int(store_id.rsplit("-", 1)[1]), opts.seed)
            left = opts.backlog
            while left > 0:
                traffic.write(writer, min(_CHUNK, left), int(time.time() * 1000))
                left -= min(_CHUNK, left)
            result.backlog_events += opts.backlog
            reader = Store.open(path)
            reader.set_outbox_budget(1 << 40)
            outboxes.append((writer, reader, traffic))
        for (store_id, key), (_, reader, _) in zip(stores, outboxes, strict=True):
            config = SenderConfig(
                hq_url=hq_url,
                store_id=store_id,
                api_key=key,
                batch_max_rows=opts.batch,
                batch_max_age_s=0.2,
                poll_s=0.05,
                heartbeat_s=5.0,
                backoff_base_s=0.1,
                backoff_max_s=2.0,
                keep_sent_s=0.0,
                maintain_s=1.0,
            )
            senders.append(Sender(reader, config))
        ready.put(worker)
        go.wait()
        for sender in senders:
            sender.start()
            sender.flush()
        # The senders' own counts say when all is acknowledged (no queries meanwhile:
        # the bench's CPU belongs to the senders and HQ).
        while sum(s.stats.events_acked for s in senders) < result.backlog_events:
            time.sleep(0.01)
        result.drained_at = time.time()
        if any(reader.outbox_backlog().rows for _, reader, _ in outboxes):
            raise RuntimeError("acknowledged as many events as written, yet some are unsent")
        if opts.seconds > 0:
            _steady(opts, outboxes, senders, result)
    except Exception as exc:  # reported to the parent, which says so
        result.errors.append(f"{type(exc).__name__}: {exc}")
        ready.put(worker)
    finally:
        for sender in senders:
            sender.stop()
            result.batches += sender.stats.batches
            result.failures += sender.stats.failures
            result.duplicates += sender.stats.duplicates
        for writer, reader, _ in outboxes:
            writer.close()
            reader.close()
        results.put(asdict(result))


def _steady(
    opts: FleetOptions,
    outboxes: list[tuple[Store, Store, Traffic]],
    senders: list[Sender],
    result: WorkerResult,
) -> None:
    acked_before = sum(s.stats.events_acked for s in senders)
    tick = 0.1
    per_tick = opts.rate * tick
    owed = [0.0] * len(outboxes)
    start = time.monotonic()
    next_tick = start
    while time.monotonic() - start < opts.seconds:
        for i, (writer, _, traffic) in enumerate(outboxes):
            owed[i] += per_tick
            n = int(owed[i])
            if n:
                owed[i] -= n
                traffic.write(writer, n, int(time.time() * 1000))
                result.steady_written += n
        for sender in senders:
            sender.notify()
        next_tick += tick
        time.sleep(max(0.0, next_tick - time.monotonic()))
    result.steady_acked = sum(s.stats.events_acked for s in senders) - acked_before
    result.steady_backlog_left = sum(reader.outbox_backlog().rows for _, reader, _ in outboxes)
    deadline = time.monotonic() + 60
    while any(r.outbox_backlog().rows for _, r, _ in outboxes) and time.monotonic() < deadline:
        for sender in senders:
            sender.flush()
        time.sleep(0.05)


# --------------------------------------------------------------------------- HQ


@contextmanager
def _hq(opts: FleetOptions, folder: Path) -> Iterator[tuple[str, str, str]]:
    """(url, admin token, database) of the HQ the fleet talks to."""
    if opts.hq_url is not None:
        token = os.environ.get(ADMIN_TOKEN_ENV)
        if not token:
            raise RuntimeError(f"--hq-url needs {ADMIN_TOKEN_ENV} to create the stores")
        yield opts.hq_url.rstrip("/"), token, "remote"
        return
    db = opts.hq_db or str(folder / "hq.db")
    token = secrets.token_urlsafe(16)
    port = free_port()
    log = (folder / "hq.log").open("wb")
    proc = subprocess.Popen(  # noqa: S603 - our own CLI, no shell
        [sys.executable, "-m", "edge.cli", "hq", "--db", db, "--port", str(port)],
        env={**os.environ, ADMIN_TOKEN_ENV: token},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"HQ exited: {(folder / 'hq.log').read_text(errors='replace')}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("HQ did not start within 30 s")
            time.sleep(0.05)
        yield url, token, "postgresql" if db.startswith("postgres") else "sqlite"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def _create_stores(url: str, token: str, run: str, n: int) -> list[tuple[str, str]]:
    out = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as admin:
        for i in range(n):
            resp = admin.post("/api/v1/stores", json={"store_id": f"sim-{run}-{i}"})
            resp.raise_for_status()
            body = resp.json()
            out.append((body["store_id"], body["api_key"]))
    return out


def _hq_counts(opts: FleetOptions, db: str, stores: list[tuple[str, str]]) -> int | None:
    """Events HQ holds for the run's stores (only where the bench runs HQ itself)."""
    if opts.hq_url is not None:
        return None
    from cloud_sync.hq.db import HqDatabase  # noqa: PLC0415 - only for this check

    target = opts.hq_db or db
    database = HqDatabase.open(target)
    try:
        return sum(database.event_count(store_id) for store_id, _ in stores)
    finally:
        database.close()


# --------------------------------------------------------------------------- the run


def run_fleet(opts: FleetOptions) -> dict[str, Any]:
    if opts.stores < 1:
        raise ValueError("--stores must be at least 1")
    cpus = os.cpu_count() or 1
    processes = max(1, min(opts.stores, opts.processes or cpus))
    folder = Path(tempfile.mkdtemp(prefix="storeedge-fleet-"))
    run = secrets.token_hex(3)
    ctx = mp.get_context("spawn")
    try:
        with _hq(opts, folder) as (url, token, kind):
            stores = _create_stores(url, token, run, opts.stores)
            shares = [stores[i::processes] for i in range(processes)]
            ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
            workers = [
                ctx.Process(
                    target=_worker,
                    args=(i, share, str(folder), opts, url, ready, go, results),
                    daemon=True,
                )
                for i, share in enumerate(shares)
            ]
            for w in workers:
                w.start()
            for _ in workers:
                ready.get(timeout=600)
            started = time.time()
            go.set()
            got = [results.get(timeout=600 + 2 * opts.seconds) for _ in workers]
            for w in workers:
                w.join(timeout=30)
            errors = [e for r in got for e in r["errors"]]
            backlog_total = sum(r["backlog_events"] for r in got)
            drained = max(r["drained_at"] for r in got) - started
            steady_written = sum(r["steady_written"] for r in got)
            steady_acked = sum(r["steady_acked"] for r in got)
            at_hq = _hq_counts(opts, str(folder / "hq.db"), stores)
            return {
                "type": "sim_fleet",
                "stores": opts.stores,
                "processes": processes,
                "hq": kind,
                "hq_url": url if opts.hq_url else None,
                "batch_rows": opts.batch,
                "backlog_events": backlog_total,
                "backlog_seconds": round(drained, 3),
                "events_per_s": round(backlog_total / drained) if drained > 0 else None,
                "steady_seconds": opts.seconds,
                "steady_rate_per_store": opts.rate if opts.seconds > 0 else None,
                "steady_written": steady_written,
                "steady_acked_per_s": round(steady_acked / opts.seconds) if opts.seconds else None,
                "steady_backlog_left": sum(r["steady_backlog_left"] for r in got),
                "batches": sum(r["batches"] for r in got),
                "failures": sum(r["failures"] for r in got),
                "duplicates": sum(r["duplicates"] for r in got),
                "events_at_hq": at_hq,
                "exactly_once": None if at_hq is None else at_hq == backlog_total + steady_written,
                "cpus": cpus,
                "errors": errors,
            }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main_json(opts: FleetOptions) -> str:
    return json.dumps(run_fleet(opts))
