"""Composition root: wires config, store, broker, MQTT link, dispatcher and engine.

One worker thread owns the writable database and the checkout engine: it
takes messages from the MQTT inbox, handles them, commits, and only then acks
them to the broker.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any, TypeVar

from devices.layout import Planogram, load_planogram
from devices.protocol import (
    Birth,
    Command,
    CommandAck,
    DeviceState,
    GateEvent,
    HandoffSeen,
    Heartbeat,
    Inbound,
    MessageKind,
    OtaStatus,
    Positions,
    ProductSeen,
    ReceiptMessage,
    Reported,
    Temperature,
    TwinValue,
    WeightBatch,
    command_topic,
    encode,
    gateway_subscriptions,
    receipt_topic,
)
from edge.alerts import Alerter
from edge.checkout.engine import CheckoutEngine
from edge.config import GatewayConfig
from edge.downsync import DownSync
from edge.health import Liveness
from edge.ingest.dispatcher import Dispatcher, Handler, Rejected
from edge.mqtt.broker import EmbeddedBroker
from edge.mqtt.link import MqttLink, Received
from edge.ota import RolloutOrchestrator
from edge.plates.service import PlateService
from edge.pricing import PriceBook
from edge.shoppers.service import ShopperService
from edge.staff.service import StaffService
from edge.stock_report import StockReporter
from edge.store.base import new_event_id
from edge.store.repo import Store
from edge.sync import HqLink, outbox_budget_bytes

log = logging.getLogger(__name__)
T = TypeVar("T")

#: How often device counters (last seq, gaps, duplicates) are flushed to SQLite.
COUNTER_FLUSH_S = 2.0


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        planogram: Planogram | None = None,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self.config = config
        self.planogram = planogram or load_planogram(config.planogram)
        self.broker: EmbeddedBroker | None = None
        self.store = Store.open(config.database.path)
        self.store.set_outbox_budget(outbox_budget_bytes(config))
        self.hq = HqLink.from_config(config)  # store-and-forward to HQ, when configured
        # what HQ sent down (planogram, catalog, config) and this gateway accepted
        self.downsync = DownSync(self, config)
        self.planogram, config = self.downsync.restore(self.planogram)
        self.config = config
        self.inbox: queue.Queue[Received] = queue.Queue()
        self._receipt_listeners: list[Callable[[ReceiptMessage], None]] = []
        self.engine = CheckoutEngine(
            self.planogram,
            self.store,
            config.detector,
            config.inference,
            on_receipt=self._publish_receipt,
            association_cfg=config.association,
            **({"clock_ms": clock_ms} if clock_ms is not None else {}),
        )
        known = self._known_devices(self.planogram)
        self._gate_direction = {gate.device_id: gate.direction for gate in config.gates}
        self.alerts = Alerter(self.store, config.store_id, self._publish, self.engine.clock_ms)
        self.plates = PlateService(config.plates, self.store, self.engine, self.alerts, self.call)
        # restock and cold-chain alerts, weight trace, metrics
        self.staff = StaffService(
            config,
            self.planogram,
            self.store,
            self.alerts,
            self.engine,
            self.call,
            lambda: self.dispatcher.counts,
            lambda device, plate: self.plates.calibrator.factors.get(device, {}).get(plate),
        )
        self.prices = PriceBook(self.planogram, self.store, config.esls, self.engine.clock_ms)
        self.shoppers = ShopperService(  # check-in, guidance, online orders, payments
            config.shoppers,
            config.store_id,
            self.planogram,
            self.store,
            self.engine.clock_ms,
            self.call,
            self._publish,
        )
        self.add_receipt_listener(self.shoppers.on_receipt)  # the charge, after the commit
        # stock per product for HQ, after the restock monitor has seen each shelf event
        self.stock_report = StockReporter(self.store, self.planogram, self.engine.clock_ms)
        self.engine.shelf_listeners.append(self.stock_report.on_shelf_event)
        self.stock_report.report()
        self._born: set[str] = set()  # devices whose birth this gateway has seen
        self._asked: set[str] = set()  # ... and those asked for a rebirth
        self.liveness = Liveness(
            round(config.devices.offline_after_s * 1000),
            self._on_device_state,
            config.devices.missed_heartbeats,
        )
        self.dispatcher = Dispatcher(
            config.store_id, known, self.handlers(), self.store, on_accepted=self._on_accepted
        )
        self.link: MqttLink | None = None
        self.ota = RolloutOrchestrator(
            self.store,
            config.ota,
            self.send_command,
            lambda device_id: self.liveness.state(device_id) == "online",
            self.engine.clock_ms,
        )
        self._actions: queue.Queue[tuple[Callable[[], Any], Future[Any]]] = queue.Queue()
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name="gateway-worker", daemon=True)

    def _known_devices(self, planogram: Planogram) -> dict[str, str]:
        """device id -> type: the planogram's shelves, the configured and provisioned devices."""
        config = self.config
        known = {shelf.device_id: "shelf" for shelf in planogram.shelves}
        known.update({gate.device_id: "gate" for gate in config.gates})
        known.update(dict.fromkeys(config.trackers, "camera"))
        known.update(dict.fromkeys((esl.device_id for esl in config.esls), "esl"))
        known.update(dict.fromkeys((u.device_id for u in config.cold_chain.units), "fridge"))
        for device in self.store.provisioned():
            known.setdefault(device["device_id"], device["device_type"])
        return known

    # ------------------------------------------------------------------ planogram

    def planogram_busy(self, new: Planogram) -> str | None:
        """Why ``new`` cannot be put to work now (on the worker), or None when it can:
        a shelf it removes, or whose plate count it changes, has a change in progress
        (a hand on a plate, a change waiting for its neighbours or for a camera's view).
        Shelves it keeps as they are never hold it up."""
        plates = {shelf.device_id: shelf.plate_count for shelf in new.shelves}
        affected = [d for d, s in self.engine.shelves.items() if plates.get(d) != len(s.plates)]
        busy = self.engine.busy_shelves(affected)
        return f"a change in progress on {', '.join(busy)}" if busy else None

    def apply_planogram(self, new: Planogram, persist: Callable[[], None] = lambda: None) -> None:
        """Put ``new`` to work now, in every part that holds the planogram, in one
        worker step (call it on the worker, after :meth:`planogram_busy` said None).

        ``persist`` records it as the running planogram (one transaction); when that
        fails, the previous planogram comes back in every part and the error is
        raised.  Then the shelf labels (names, planogram prices) and HQ's stock names
        follow, and restock alerts of lanes that are gone are resolved (the labels and
        alerts are mended at start too).  Raises ValueError, changing nothing, when a
        shelf label shows a product ``new`` lacks."""
        old = self.planogram
        self._swap_planogram(new)
        try:
            persist()
        except BaseException:
            self._swap_planogram(old)
            raise
        for device_id in self.prices.sync():
            self.reconcile_if_online(device_id)
        self.staff.restock.resolve_orphans()
        self.stock_report.report()
        log.info(
            "planogram %d applied: %d shelves, %d products",
            new.version,
            len(new.shelves),
            len(new.products),
        )

    def _swap_planogram(self, new: Planogram) -> None:
        self.prices.replace_planogram(new)  # first: it refuses one without a label's product
        self.engine.replace_planogram(new)  # detectors of unchanged shelves keep their state
        self.staff.replace_planogram(new)
        self.shoppers.replace_planogram(new)
        self.stock_report.replace_planogram(new)
        known = self._known_devices(new)
        for device_id in set(self.dispatcher.known_devices) - set(known):
            self.liveness.forget(device_id)
        self.dispatcher.known_devices = known
        self.planogram = new

    # ------------------------------------------------------------------ handlers

    def handlers(self) -> dict[MessageKind, Handler]:
        return {
            MessageKind.BIRTH: self._on_birth,
            MessageKind.STATE: self._on_state,
            MessageKind.WEIGHT: self._on_weight,
            MessageKind.GATE: self._on_gate,
            MessageKind.POSITIONS: self._on_positions,
            MessageKind.HEARTBEAT: self._on_heartbeat,
            MessageKind.REPORTED: self._on_reported,
            MessageKind.CMD_ACK: self._on_cmd_ack,
            MessageKind.TEMPERATURE: self._on_temperature,
            MessageKind.OTA: self._on_ota,
            MessageKind.PRODUCT: self._on_product_seen,
            MessageKind.HANDOFF: self._on_handoff_seen,
        }

    def _on_birth(self, inbound: Inbound) -> None:
        msg = inbound.message
        assert isinstance(msg, Birth)
        self.store.record_birth(
            inbound.device_id, msg.device_type.value, msg.firmware, msg.birth_count, msg.seq, msg.ts
        )
        self.store.set_reported(inbound.device_id, dict(msg.reported), self.engine.clock_ms())
        self._expect_heartbeats(inbound.device_id, msg.reported)
        self._reconcile(inbound.device_id)  # a device that (re)connects gets what it missed
        self.ota.on_birth(inbound.device_id, msg.firmware)

    def _on_reported(self, inbound: Inbound) -> None:
        msg = inbound.message
        assert isinstance(msg, Reported)
        self.store.set_reported(inbound.device_id, dict(msg.reported), self.engine.clock_ms())
        self._expect_heartbeats(inbound.device_id, msg.reported)

    def _expect_heartbeats(self, device_id: str, reported: Mapping[str, TwinValue]) -> None:
        interval = reported.get("heartbeat_s")
        if isinstance(interval, int | float) and not isinstance(interval, bool) and interval > 0:
            self.liveness.expect_every(device_id, round(float(interval) * 1000))

    def _reconcile(self, device_id: str) -> None:
        """Send a device the desired settings it does not run yet."""
        pending = self.store.twin(device_id)["pending"]
        if pending:
            self.send_command(device_id, "config", pending)

    def reconcile_if_online(self, device_id: str) -> None:
        """:meth:`_reconcile` a device that is online now (the others get it on rebirth)."""
        if self.liveness.state(device_id) == "online":
            self._reconcile(device_id)

    def set_desired(self, device_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Staff/HQ change a device's desired settings (runs on the worker)."""

        def apply() -> dict[str, Any]:
            if device_id not in self.dispatcher.known_devices:
                raise LookupError(f"unknown device {device_id!r}")
            twin = self.store.set_desired(device_id, changes, self.engine.clock_ms())
            self.reconcile_if_online(device_id)
            return twin

        return self.call(apply)

    def set_price(self, barcode: str, price_minor: int, by: str = "staff") -> dict[str, Any]:
        """A new price (runs on the worker): the catalog, then every label of the product
        through its twin (online labels get ``cmd/config`` now, the others on rebirth)."""

        def apply() -> dict[str, Any]:
            result = self.prices.change(barcode, price_minor, by)
            for device_id in result["labels"]:
                self.reconcile_if_online(device_id)
            return result

        return self.call(apply)

    def _on_state(self, inbound: Inbound) -> None:
        msg = inbound.message
        assert isinstance(msg, DeviceState)
        now = self.engine.clock_ms()
        if msg.state == "online":
            self.liveness.seen(inbound.device_id, now)
        else:
            self.liveness.gone(inbound.device_id, now, "said offline (goodbye or last will)")

    def _on_accepted(self, inbound: Inbound) -> None:
        if inbound.kind is not MessageKind.STATE:
            self.liveness.seen(inbound.device_id, self.engine.clock_ms())
        if inbound.kind is MessageKind.BIRTH:
            self._born.add(inbound.device_id)
        elif inbound.device_id not in self._born and inbound.device_id not in self._asked:
            # Sparkplug's rule: data from a device whose birth we missed (we started after
            # it did) -> ask it to be born again, so we learn its full state.
            self._asked.add(inbound.device_id)
            self.send_command(inbound.device_id, "rebirth")

    def send_command(self, device_id: str, name: str, args: dict[str, Any] | None = None) -> str:
        """Publish a command to one device; its ack arrives as a ``command_ack`` event."""
        command = Command(cmd_id=new_event_id(), ts=self.engine.clock_ms(), args=args or {})
        self._publish(command_topic(self.config.store_id, device_id, name), encode(command))
        self.store.record_event(
            "command_sent", command.ts, device_id, None, {"command": name, "cmd_id": command.cmd_id}
        )
        return command.cmd_id

    def _on_device_state(self, device_id: str, state: str, reason: str, now_ms: int) -> None:
        kind = self.dispatcher.known_devices.get(device_id, "unknown")
        self.store.record_state(device_id, kind, state, now_ms, reason)
        log.info("device %s is %s (%s)", device_id, state, reason)
        self.ota.on_device_state(device_id, state)

    def _on_heartbeat(self, inbound: Inbound) -> None:
        msg = inbound.message
        assert isinstance(msg, Heartbeat)
        self.store.record_heartbeat(
            inbound.device_id,
            self.dispatcher.known_devices[inbound.device_id],
            msg.ts,
            msg.model_dump(include={"uptime_s", "firmware", "battery_pct", "rssi_dbm"}),
        )
        self.ota.on_heartbeat(inbound.device_id, msg.firmware)

    def _on_weight(self, inbound: Inbound) -> None:
        msg = inbound.message
        assert isinstance(msg, WeightBatch)
        if inbound.device_id not in self.engine.shelves:
            raise Rejected(f"{inbound.device_id} is not a shelf")
        grams = self.plates.on_weight(inbound.device_id, msg.samples, msg.ts)
        self.engine.on_weight(inbound.device_id, grams, msg.ts, msg.rate_hz)
        self.staff.on_weight(inbound.device_id, grams, msg.ts)

    def _on_gate(self, inbound: Inbound) -> None:
        msg = inbound.message
        assert isinstance(msg, GateEvent)
        configured = self._gate_direction.get(inbound.device_id)
        if configured != msg.direction:
            raise Rejected(
                f"gate {inbound.device_id} is configured as {configured}, sent {msg.direction}"
            )
        # the entry gate admits only a valid check-in token (see ShopperService.on_gate)
        self.shoppers.on_gate(
            inbound.device_id, msg.direction, msg.session_token, msg.ts, self.engine.on_gate
        )

    def _on_positions(self, inbound: Inbound) -> None:
        msg = inbound.message
        assert isinstance(msg, Positions)
        if self.dispatcher.known_devices[inbound.device_id] != "camera":
            raise Rejected(f"{inbound.device_id} is not a camera tracker")
        for pos in msg.positions:
            hand = None
            if pos.hand_x is not None and pos.hand_y is not None and pos.hand_z is not None:
                hand = (pos.hand_x, pos.hand_y, pos.hand_z)
            self.engine.on_position(pos.session_token, msg.ts, pos.x, pos.y, hand)

    def _expect_kind(self, inbound: Inbound, kind: str, what: str) -> None:
        if self.dispatcher.known_devices[inbound.device_id] != kind:
            raise Rejected(f"{inbound.device_id} is not {what}")

    def _on_product_seen(self, inbound: Inbound) -> None:
        msg = inbound.message
        assert isinstance(msg, ProductSeen)
        self._expect_kind(inbound, "camera", "a camera")
        if msg.shelf_id not in self.engine.shelves:
            raise Rejected(f"{msg.shelf_id} is not a shelf of this store")
        self.engine.on_product_seen(
            inbound.device_id,
            msg.shelf_id,
            msg.plates,
            msg.ts,
            dict(msg.scores),
            msg.session_token,
            msg.action,
        )

    def _on_handoff_seen(self, inbound: Inbound) -> None:
        msg = inbound.message
        assert isinstance(msg, HandoffSeen)
        self._expect_kind(inbound, "camera", "a camera")
        self.engine.on_handoff_seen(
            inbound.device_id,
            msg.from_token,
            msg.to_token,
            msg.quantity,
            msg.ts,
            dict(msg.scores),
        )

    def _on_cmd_ack(self, inbound: Inbound) -> None:
        msg = inbound.message
        assert isinstance(msg, CommandAck)
        self.store.record_event(
            "command_ack",
            msg.ts,
            inbound.device_id,
            None,
            {"command": inbound.command, "cmd_id": msg.cmd_id, "ok": msg.ok, "detail": msg.detail},
        )
        self.ota.on_command_ack(inbound.device_id, inbound.command, msg.ok, msg.detail)
        now = self.engine.clock_ms()
        self.prices.on_ack(inbound.device_id, inbound.command, msg.ok, msg.detail, now)

    def _on_temperature(self, inbound: Inbound) -> None:
        msg = inbound.message
        assert isinstance(msg, Temperature)
        self._expect_kind(inbound, "fridge", "a fridge sensor")
        self.store.record_temperature(inbound.device_id, msg.ts, msg.celsius, msg.door_open)
        self.staff.on_temperature(inbound.device_id, msg.ts, msg.celsius)

    def _on_ota(self, inbound: Inbound) -> None:
        msg = inbound.message
        assert isinstance(msg, OtaStatus)
        self.store.record_event(
            "ota_status",
            msg.ts,
            inbound.device_id,
            None,
            {
                "version": msg.version,
                "phase": msg.phase.value,
                "slot": msg.slot,
                "detail": msg.detail,
            },
        )
        self.ota.on_status(inbound.device_id, msg)

    # ------------------------------------------------------------------ receipts

    def add_receipt_listener(self, listener: Callable[[ReceiptMessage], None]) -> None:
        self._receipt_listeners.append(listener)

    def _publish(self, topic: str, payload: bytes) -> None:
        if self.link is not None:
            self.link.publish(topic, payload, qos=1)

    def _publish_receipt(self, receipt: ReceiptMessage) -> None:
        self._publish(receipt_topic(self.config.store_id, receipt.session_token), encode(receipt))
        if self.hq is not None:
            self.hq.notify()
        for listener in self._receipt_listeners:
            listener(receipt)

    # ------------------------------------------------------------------ staff actions

    def call(self, action: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``action`` on the worker thread (the only writer) and return its result."""
        if not self._worker.is_alive():
            return action()
        future: Future[T] = Future()
        self._actions.put((action, future))
        return future.result(timeout)

    def resolve_review(self, review_id: str, **decision: Any) -> dict[str, Any]:
        """Staff decision on a review item, run on the worker (see CheckoutEngine)."""
        result = self.call(lambda: self.engine.resolve_review(review_id, **decision))
        self.shoppers.after_review()  # a refund or extra charge on an issued receipt
        return result

    def register_firmware(self, manifest: dict[str, Any], image: bytes) -> dict[str, Any]:
        """Keep a signed firmware image (refused unless it verifies; see edge/ota/)."""
        return self.call(lambda: self.ota.register_image(manifest, image))

    def create_rollout(
        self,
        device_type: str,
        version: str,
        *,
        canary_share: float | None = None,
        devices: list[str] | None = None,
        canary: list[str] | None = None,
    ) -> dict[str, Any]:
        """Start a staged rollout of a registered image (canaries first)."""
        return self.call(
            lambda: self.ota.create_rollout(
                device_type, version, canary_share=canary_share, devices=devices, canary=canary
            )
        )

    def halt_rollout(self, rollout_id: str, reason: str) -> dict[str, Any]:
        return self.call(lambda: self.ota.halt(rollout_id, reason))

    def calibrate(
        self, device_id: str, plate: int, action: str, known_g: float | None = None
    ) -> dict[str, Any]:
        """One step of a plate's guided calibration (see edge/plates/calibrator.py)."""
        return self.plates.calibrate(device_id, plate, action, known_g)

    def set_calibration(
        self, device_id: str, plate: int, tare_raw: float | None, span: float | None, by: str
    ) -> dict[str, Any]:
        """Single-shot factors for a plate (both None: forget them)."""
        return self.plates.set_calibration(device_id, plate, tare_raw, span, by)

    def ack_alert(self, alert_id: str, by: str) -> dict[str, Any]:
        return self.plates.ack_alert(alert_id, by)

    def _run_actions(self) -> None:
        while True:
            try:
                action, future = self._actions.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(action())
                except Exception as exc:  # handed to the caller, who reports it
                    future.set_exception(exc)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.prices.sync()  # before the worker runs: labels' desired twins from the catalog
        mqtt_cfg = self.config.mqtt
        host, port = mqtt_cfg.broker_address()
        if mqtt_cfg.broker == "embedded":
            self.broker = EmbeddedBroker(host, port)
            self.broker.start()
            port = self.broker.port
        self.link = MqttLink(
            host=host,
            port=port,
            client_id=mqtt_cfg.client_id,
            store_id=self.config.store_id,
            subscriptions=gateway_subscriptions(self.config.store_id),
            inbox=self.inbox,
            username=mqtt_cfg.username,
            password=mqtt_cfg.password.get_secret_value() if mqtt_cfg.password else None,
            keepalive_s=mqtt_cfg.keepalive_s,
            qos=mqtt_cfg.qos,
            reconnect_min_s=mqtt_cfg.reconnect_min_s,
            reconnect_max_s=mqtt_cfg.reconnect_max_s,
        )
        self.shoppers.payments.request_owed()  # charges a crash left unrequested
        self._worker.start()
        self.link.start()
        self.shoppers.payments.start()
        if self.hq is not None:
            self.hq.start()
        self.downsync.start()  # fetches from HQ, when configured

    def health(self) -> dict[str, Any]:
        connected = self.link is not None and self.link.connected
        return {
            "ok": connected and self._worker.is_alive(),
            "mqtt_connected": connected,
            "worker_alive": self._worker.is_alive(),
            "open_sessions": len(self.engine.open_sessions),
        }

    @property
    def mqtt_address(self) -> tuple[str, int]:
        if self.link is None:
            raise RuntimeError("gateway not started")
        return self.link.host, self.link.port

    def stop(self) -> None:
        self.downsync.stop()
        self.shoppers.payments.stop()
        if self.link is not None:
            self.link.stop()
        self._stop.set()
        self._worker.join(timeout=10)
        self.store.save_device_counters(self.dispatcher.seq.counters())
        self.store.close()
        if self.hq is not None:
            self.hq.stop()
        if self.broker is not None:
            self.broker.stop()

    def _work(self) -> None:
        last_flush = time.monotonic()
        while not self._stop.is_set() or not self.inbox.empty():
            try:
                received = self.inbox.get(timeout=0.1)
            except queue.Empty:
                received = None
            try:
                self._run_actions()
                if received is None:
                    self.engine.poll()
                else:
                    self.dispatcher.dispatch(received.topic, received.payload)
                    if self.link is not None:
                        self.link.ack(received)
                if time.monotonic() - last_flush > COUNTER_FLUSH_S:
                    last_flush = time.monotonic()
                    self.store.save_device_counters(self.dispatcher.seq.counters())
                    self.liveness.check(self.engine.clock_ms())
                    self.ota.tick()
                    self.staff.tick()
                    self.stock_report.report()
            except Exception:
                # The dispatcher dead-letters handler errors; this is a bug in our own
                # loop.  Keep serving the store, and keep the evidence in the log.
                log.exception("gateway worker step failed")
