"""``storeedge demo``: broker, gateway, simulated store and API in one process tree."""

from __future__ import annotations

import json
import logging
import queue
import secrets
import signal
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import httpx
from pydantic import SecretStr

from cloud_sync.hq.auth import hash_key, new_api_key
from cloud_sync.hq.server import HqServer
from devices.protocol import ReceiptMessage
from edge.api.server import serve_gateway
from edge.app import Gateway
from edge.config import GatewayConfig
from edge.mqtt.broker import free_port, port_is_free
from firmware_sim.store import ShopperTruth, StoreSimulator

log = logging.getLogger(__name__)

#: How long the demo waits at the end for receipts of shoppers who already left.
RECEIPT_GRACE_S = 10.0


@dataclass
class DemoResult:
    shoppers: int = 0
    receipts: int = 0
    receipts_correct: int = 0
    dead_letters: int = 0
    exit_to_receipt_ms: list[int] = field(default_factory=list)
    transactions: int = 0
    outbox_unsent: int | None = None  # None: no HQ configured
    hq_transactions: int | None = None  # what the demo's own HQ holds
    charged: int = 0  # receipts charged to the shopper's card (simulated provider)

    def summary(self, duration_s: float) -> dict[str, Any]:
        latencies = sorted(self.exit_to_receipt_ms)
        return {
            "type": "summary",
            "shoppers": self.shoppers,
            "receipts": self.receipts,
            "receipts_correct": self.receipts_correct,
            "dead_letters": self.dead_letters,
            "duration_s": round(duration_s, 1),
            "exit_to_receipt_ms_max": latencies[-1] if latencies else None,
            "transactions": self.transactions,
            "outbox_unsent": self.outbox_unsent,
            "hq_transactions": self.hq_transactions,
            "charged": self.charged,
        }


def receipt_matches(receipt: ReceiptMessage, truth: ShopperTruth) -> bool:
    lines = {line.barcode: line.quantity for line in receipt.lines}
    return lines == truth.lines and receipt.total_minor == truth.total_minor


@dataclass(frozen=True)
class HqOptions:
    """Where the demo syncs: its own HQ (default), one started separately, or none."""

    url: str | None = None  # None: start a local HQ
    store_id: str | None = None
    enabled: bool = True
    drain_s: float = 30.0


def _with_hq(
    config: GatewayConfig,
    options: HqOptions,
    data_dir: Path,
    stack: ExitStack,
    out: TextIO,
    as_json: bool,
) -> tuple[GatewayConfig, HqServer | None]:
    if options.store_id is not None:
        config = config.model_copy(update={"store_id": options.store_id})
    if not options.enabled:
        return config.model_copy(update={"hq": config.hq.model_copy(update={"url": None})}), None
    if options.url is not None or config.hq.url is not None:
        url = options.url or config.hq.url
        if config.hq.api_key is None:
            raise RuntimeError(
                f"HQ at {url} needs this store's key: set STOREEDGE_HQ_STORE_KEY "
                "(from `storeedge hq stores add`)"
            )
        return config.model_copy(update={"hq": config.hq.model_copy(update={"url": url})}), None
    admin_token = secrets.token_urlsafe(16)
    hq = HqServer(data_dir / "hq.db", admin_token=admin_token).start()
    stack.callback(hq.stop)
    key = new_api_key()
    hq.db.add_store(config.store_id, "demo store", hash_key(key), int(time.time() * 1000))
    _emit(
        out,
        as_json,
        {"type": "hq", "url": hq.url, "fleet": f"{hq.url}/fleet", "admin_token": admin_token},
        f"storeedge demo: local HQ {hq.url}/fleet (admin token {admin_token})",
    )
    update = {"url": hq.url, "api_key": SecretStr(key), "heartbeat_s": 2.0}
    return config.model_copy(update={"hq": config.hq.model_copy(update=update)}), hq


def _demo_config(config: GatewayConfig, data_dir: Path, mqtt_port: int | None) -> GatewayConfig:
    mqtt = config.mqtt
    if mqtt.broker == "embedded":
        port = mqtt_port if mqtt_port is not None else mqtt.embedded_port
        if port == 0 or not port_is_free(mqtt.embedded_host, port):
            port = free_port(mqtt.embedded_host)
        mqtt = mqtt.model_copy(update={"embedded_port": port})
    database = config.database.model_copy(update={"path": data_dir / "gateway.db"})
    shoppers = config.shoppers
    if shoppers.secret is None:  # the demo signs check-in codes with a fresh secret
        shoppers = shoppers.model_copy(update={"secret": SecretStr(secrets.token_urlsafe(32))})
    return config.model_copy(update={"mqtt": mqtt, "database": database, "shoppers": shoppers})


class _ShopperPhones:
    """The simulated shoppers' app: each signs up and checks in through the gateway's
    API, and shows the signed check-in token at the entry gate."""

    def __init__(self, api_url: str) -> None:
        self._url = api_url

    def _post(self, path: str, token: str | None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = httpx.post(self._url + path, headers=headers, timeout=10)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def checkin(self, _name: str) -> str:
        shopper = self._post("/api/v1/shoppers", None)
        return str(self._post("/api/v1/checkin", shopper["token"])["session_token"])


class _ReceiptBook:
    """Receipts as they arrive, each judged once the simulator's truth for it is in."""

    def __init__(self, out: TextIO, as_json: bool, sim: StoreSimulator) -> None:
        self.inbox: queue.Queue[ReceiptMessage] = queue.Queue()
        self.result = DemoResult()
        self._out, self._json, self._sim = out, as_json, sim
        self._pending: dict[str, ReceiptMessage] = {}
        self._reported: set[str] = set()

    def drain(self, timeout: float, final: bool = False) -> None:
        try:
            receipt = self.inbox.get(timeout=timeout)
            self._pending[receipt.session_token] = receipt
        except queue.Empty:
            pass
        truths = {t.token: t for t in self._sim.truths()}
        for token in list(self._pending):
            if token in truths or final:
                _report_receipt(
                    self._out, self._json, self._pending.pop(token), truths.get(token), self.result
                )
                self._reported.add(token)

    def complete(self) -> bool:
        done = {t.token for t in self._sim.truths()}
        return done <= self._reported and self.inbox.empty()


def run_demo(
    config: GatewayConfig,
    *,
    duration_s: float | None,
    api_port: int,
    as_json: bool,
    seed: int = 0,
    data_dir: Path | None = None,
    mqtt_port: int | None = None,
    hq: HqOptions | None = None,
    out: TextIO,
) -> DemoResult:
    with tempfile.TemporaryDirectory(prefix="storeedge-demo-") as tmp:
        folder = data_dir or Path(tmp)
        config = _demo_config(config, folder, mqtt_port)
        stop = threading.Event()

        def _on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %d: shutting down", signum)
            stop.set()

        previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        started = time.monotonic()
        try:
            with ExitStack() as stack:
                hq_options = hq or HqOptions()
                config, local_hq = _with_hq(config, hq_options, folder, stack, out, as_json)
                result = _run(
                    config,
                    stack,
                    stop,
                    duration_s,
                    api_port,
                    as_json,
                    seed,
                    out,
                    hq_options.drain_s,
                )
                if local_hq is not None:
                    result.hq_transactions = local_hq.db.transactions(config.store_id, 1, 0)[1]
                _emit(
                    out,
                    as_json,
                    result.summary(time.monotonic() - started),
                    f"{result.shoppers} shoppers, {result.receipts} receipts, "
                    f"{result.receipts_correct} correct, {result.dead_letters} dead letters, "
                    f"{result.transactions} transactions, outbox unsent: {result.outbox_unsent}",
                )
                return result
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _run(
    config: GatewayConfig,
    stack: ExitStack,
    stop: threading.Event,
    duration_s: float | None,
    api_port: int,
    as_json: bool,
    seed: int,
    out: TextIO,
    drain_s: float,
) -> DemoResult:
    started = time.monotonic()
    gateway = Gateway(config)
    gateway.start()
    stack.callback(gateway.stop)
    if not gateway.link or not gateway.link.wait_connected(15):
        raise RuntimeError("gateway could not connect to its MQTT broker")
    host, port = gateway.mqtt_address
    configured = config.api.staff_token
    staff_token = configured.get_secret_value() if configured else secrets.token_urlsafe(16)
    api = serve_gateway(gateway, config.api.host, api_port, staff_token)
    stack.callback(api.stop)
    _emit(
        out,
        as_json,
        {
            "type": "started",
            "mqtt": f"mqtt://{host}:{port}",
            "staff_token": staff_token,
            "api": api.url,
            "store_id": config.store_id,
        },
        f"storeedge demo: store {config.store_id}, MQTT mqtt://{host}:{port}, "
        f"API and live page {api.url}/ (Ctrl-C to stop)",
    )
    gates = {g.direction: g.device_id for g in config.gates}
    sim = StoreSimulator(
        gateway.planogram,
        config.store_id,
        host,
        port,
        entry_gate=gates["entry"],
        exit_gate=gates["exit"],
        seed=seed,
        esls=[esl.device_id for esl in config.esls],
        # the cold-chain units, kept 4 degrees under their limit
        fridges={u.device_id: u.max_c - 4.0 for u in config.cold_chain.units},
        checkin=_ShopperPhones(api.url).checkin if config.shoppers.verify_checkin else None,
    )
    sim.start()
    stack.callback(sim.stop)
    book = _ReceiptBook(out, as_json, sim)
    gateway.add_receipt_listener(book.inbox.put)
    sim_thread = threading.Thread(target=sim.run, args=(stop,), name="store-sim", daemon=True)
    sim_thread.start()
    while not stop.is_set():
        if duration_s is not None and time.monotonic() - started >= duration_s:
            stop.set()
        book.drain(0.2)
    sim_thread.join(timeout=60)  # the shopper in the store finishes their visit
    deadline = time.monotonic() + RECEIPT_GRACE_S
    while not book.complete() and time.monotonic() < deadline:
        book.drain(0.2)
    book.drain(0, final=True)
    result = book.result
    result.shoppers = len(sim.truths())
    result.dead_letters = gateway.dispatcher.counts["dead_letters"]
    result.transactions = gateway.call(gateway.store.receipt_count)
    gateway.shoppers.payments.settle_pending()  # what the payments thread has not done yet
    result.charged = len(
        gateway.call(
            lambda: [
                p
                for p in gateway.store.payments(limit=100_000)
                if p["receipt_id"] and p["kind"] == "charge" and p["status"] == "succeeded"
            ]
        )
    )
    if gateway.hq is not None:
        if not gateway.hq.drain(drain_s):
            log.warning("the outbox did not empty within %.0f s; it is kept for later", drain_s)
        result.outbox_unsent = gateway.hq.backlog().rows
    log.debug("demo ran %.1f s", time.monotonic() - started)
    return result


def _report_receipt(
    out: TextIO,
    as_json: bool,
    receipt: ReceiptMessage,
    truth: ShopperTruth | None,
    result: DemoResult,
) -> None:
    correct = truth is not None and receipt_matches(receipt, truth)
    result.receipts += 1
    result.receipts_correct += int(correct)
    result.exit_to_receipt_ms.append(receipt.issued_ts - receipt.exited_ts)
    body = {"type": "receipt", "correct": correct, **receipt.model_dump()}
    lines = ", ".join(f"{ln.quantity} x {ln.name}" for ln in receipt.lines) or "(empty)"
    total = f"{receipt.total_minor // 100}.{receipt.total_minor % 100:02d} {receipt.currency}"
    _emit(
        out,
        as_json,
        body,
        f"receipt {receipt.receipt_id} for {receipt.session_token}: {lines} = {total} "
        f"[{'correct' if correct else 'WRONG'}]",
    )


def _emit(out: TextIO, as_json: bool, body: dict[str, Any], text: str) -> None:
    out.write((json.dumps(body, sort_keys=True) if as_json else text) + "\n")
    out.flush()
