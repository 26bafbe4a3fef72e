"""The firmware core every simulated device shares: one MQTT connection, birth/death,
a monotonic sequence number and the command channel (``rebirth`` and friends).

Speaks only :mod:`devices.protocol`: every topic and payload comes from there.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from pydantic import BaseModel, ValidationError

from devices.ota import OTA_COMMANDS
from devices.protocol import (
    Birth,
    Command,
    CommandAck,
    DeviceState,
    DeviceType,
    Heartbeat,
    Reported,
    TwinValue,
    birth_topic,
    command_ack_topic,
    command_filter,
    command_topic,
    encode,
    heartbeat_topic,
    reported_topic,
    state_topic,
)

if TYPE_CHECKING:
    from firmware_sim.faults import WireFaults
    from firmware_sim.ota import SimOta

logger = logging.getLogger(__name__)

#: Seconds between reconnect attempts (paho doubles from min up to max).
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 8
KEEPALIVE_S = 15
#: How long stop() waits for the retained offline state to reach the broker.
_STOP_PUBLISH_WAIT_S = 2.0


#: Heartbeats are never sent more often than this, whatever the settings say.
MIN_HEARTBEAT_S = 0.5


def now_ms() -> int:
    """Wall-clock time in milliseconds, as carried in every device message's ``ts``."""
    return int(time.time() * 1000)


def not_sent() -> mqtt.MQTTMessageInfo:
    """What ``publish`` returns for a message lost on a dead link (as paho does for QoS 0)."""
    info = mqtt.MQTTMessageInfo(0)
    info.rc = MQTTErrorCode.MQTT_ERR_NO_CONN
    return info


class Ticker:
    """A daemon thread calling ``tick()`` every ``period_s`` seconds until stopped.

    An exception in ``tick`` is logged and the next tick still comes: a simulated
    sensor keeps sampling through a failed publish.
    """

    def __init__(self, name: str, period_s: float, tick: Callable[[], None]) -> None:
        self.name, self.period_s, self._tick = name, period_s, tick
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._halt.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._halt.wait(self.period_s):
            try:
                self._tick()
            except Exception:
                logger.exception("%s: tick failed", self.name)


class SimDevice:
    """One simulated device with its own MQTT client.

    On every (re)connect it publishes a :class:`Birth` (``birth_count`` 0, 1, 2, ...),
    a retained ``online`` :class:`DeviceState` and subscribes to its commands.
    Its last will is a retained ``offline`` state.
    """

    def __init__(
        self,
        store_id: str,
        device_id: str,
        host: str,
        port: int,
        *,
        device_type: DeviceType,
        username: str | None = None,
        password: str | None = None,
        firmware: str = "sim-1.0.0",
        plates: int = 0,
        heartbeat_s: float = 5.0,
    ) -> None:
        self.store_id = store_id
        self.device_id = device_id
        self.host = host
        self.port = port
        self.device_type = device_type
        self.firmware = firmware
        self.plates = plates

        self._seq_lock = threading.Lock()
        self._seq = 0
        self._birth_lock = threading.Lock()
        self._birth_count = 0  # the count the next connect will announce
        self._current_birth: int | None = None  # the count of the live connection
        self._connected = threading.Event()
        self._last_connect_error: str | None = None
        self._started = False
        self._stopping = False
        self._online_info: mqtt.MQTTMessageInfo | None = None
        self.heartbeat_s = heartbeat_s
        #: The device's settings (the reported half of its twin); ``config`` changes them.
        self.settings: dict[str, TwinValue] = {"heartbeat_s": heartbeat_s}
        self._started_at = time.monotonic()
        self._halt = threading.Event()
        self._heartbeat_thread = threading.Thread(
            target=self._heartbeats, name=f"{device_id}-heartbeat", daemon=True
        )
        #: Fault injection (firmware_sim.faults): publish-path faults, and a link taken away.
        self.wire_faults: WireFaults | None = None
        #: A/B firmware slots (firmware_sim.ota.SimOta sets it): answers the OTA commands.
        self.ota: SimOta | None = None
        self._link_down = threading.Event()
        self._link_lock = threading.Lock()
        self._power_lost = False

        self._username, self._password = username, password
        self._client = self._new_client()

    def _new_client(self) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.device_id)
        if self._username is not None:
            client.username_pw_set(self._username, self._password)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.on_pre_connect = self._on_pre_connect
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    # ------------------------------------------------------------------ basics

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def birth_count(self) -> int | None:
        """The birth count announced on the live connection (None when offline)."""
        return self._current_birth

    def next_seq(self) -> int:
        """The next message sequence number: monotonic, thread-safe; only a power cycle
        (:meth:`drop_link`) starts it again at 0, and the birth after it tells the gateway."""
        with self._seq_lock:
            seq = self._seq
            self._seq += 1
            return seq

    def publish(
        self, topic: str, message: BaseModel, qos: int = 1, *, retain: bool = False
    ) -> mqtt.MQTTMessageInfo:
        """Send one protocol model (JSON wire form) on ``topic``.

        While the link is down the message is lost (:func:`not_sent`); with
        :attr:`wire_faults` set it goes through them, else through :meth:`publish_bytes`.
        """
        if self._link_down.is_set():
            return not_sent()
        wire = self.wire_faults
        if wire is not None:
            return wire.publish(self._client, topic, message, qos, retain=retain)
        return self.publish_bytes(topic, encode(message), qos, retain=retain)

    def publish_bytes(
        self, topic: str, payload: bytes, qos: int = 0, *, retain: bool = False
    ) -> mqtt.MQTTMessageInfo:
        """Send an already-encoded payload (a camera frame, say) on ``topic``.

        While the link is down the payload is lost and :func:`not_sent` comes back,
        exactly as for :meth:`publish`.

        :attr:`wire_faults` do NOT apply here, on purpose: ``WireFaults.publish`` works
        on the protocol model, not on bytes.  Clock skew rewrites the model's ``ts``,
        impersonation its ``device_id`` (the topic follows), and births are exempted by
        their model type; a binary payload such as
        :func:`devices.protocol.encode_camera_frame` has no model to rewrite.  Applying
        only the byte-level faults (duplicate, reorder) would be a new, half fault path,
        so raw payloads go out as given, as camera frames always have.  A dropped link
        (:meth:`drop_link`) does lose them.
        """
        if self._link_down.is_set():
            return not_sent()
        return self._client.publish(topic, payload, qos=qos, retain=retain)

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    # ------------------------------------------------------------------ life cycle

    def start(self, timeout: float = 10.0) -> None:
        """Connect (reconnecting automatically later on) and block until connected."""
        if self._started:
            raise RuntimeError(f"device {self.device_id} already started")
        self._started = True
        self._client.connect_async(self.host, self.port, keepalive=KEEPALIVE_S)
        self._client.loop_start()
        deadline = time.monotonic() + timeout
        if self._connected.wait(timeout) and self._online_acknowledged(deadline):
            logger.info("device %s connected to %s:%d", self.device_id, self.host, self.port)
            if self.heartbeat_s > 0:
                self._heartbeat_thread.start()
            return
        reason = self._last_connect_error or "no answer"
        self._shutdown_client()
        raise TimeoutError(
            f"device {self.device_id} could not connect to MQTT broker "
            f"{self.host}:{self.port} within {timeout:.1f} s (last error: {reason})"
        )

    def stop(self) -> None:
        """Publish the retained offline state, disconnect cleanly and stop the network loop."""
        if not self._started:
            return
        self._halt.set()
        if self.connected:
            offline = DeviceState(seq=self.next_seq(), ts=now_ms(), state="offline")
            info = self.publish(state_topic(self.store_id, self.device_id), offline, retain=True)
            try:
                info.wait_for_publish(_STOP_PUBLISH_WAIT_S)
            except (RuntimeError, ValueError) as exc:
                logger.warning("device %s: offline state not sent: %s", self.device_id, exc)
        self._shutdown_client()
        logger.info("device %s stopped", self.device_id)

    # ------------------------------------------------------------------ faults

    @property
    def running(self) -> bool:
        """Started and not stopped (connected or not)."""
        return self._started

    @property
    def link_down(self) -> bool:
        return self._link_down.is_set()

    def drop_link(self, *, power_loss: bool = False) -> None:
        """Lose the network (or the power) without a goodbye: the TCP connection just
        closes, so the broker publishes the last will.  What the device sends meanwhile
        is lost.  ``power_loss`` also loses the RAM: ``seq`` starts again at 0 and the
        uptime restarts (``birth_count`` is kept, as if in flash).  :meth:`restore_link`
        reconnects, with a new birth."""
        with self._link_lock:
            if not self._started or self._link_down.is_set():
                return
            self._link_down.set()
            self._connected.clear()
            self._current_birth = None
            old, self._client = self._client, self._new_client()
            old.loop_stop()  # no more network traffic, and no DISCONNECT packet
            sock = old.socket()
            if sock is not None:
                sock.close()
            if self.wire_faults is not None:
                self.wire_faults.drop_held()
            if power_loss:
                with self._seq_lock:
                    self._seq = 0
                self._power_lost = True  # the uptime restarts at power-on
        logger.info("device %s: %s lost", self.device_id, "power" if power_loss else "network link")

    def restore_link(self) -> None:
        """Reconnect after :meth:`drop_link` (a new birth follows once connected)."""
        with self._link_lock:
            if not self._started or not self._link_down.is_set():
                return
            self._link_down.clear()
            if self._power_lost:
                self._power_lost = False
                self._started_at = time.monotonic()
            self._client.connect_async(self.host, self.port, keepalive=KEEPALIVE_S)
            self._client.loop_start()

    def heartbeat(self) -> Heartbeat:
        """What the device reports about itself; subclasses add battery or signal."""
        return Heartbeat(
            seq=self.next_seq(),
            ts=now_ms(),
            firmware=self.firmware,
            uptime_s=round(time.monotonic() - self._started_at, 1),
        )

    def _heartbeats(self) -> None:
        while not self._halt.wait(self.heartbeat_s):
            if self.connected and (self.ota is None or self.ota.app_alive):
                self.publish(heartbeat_topic(self.store_id, self.device_id), self.heartbeat())

    def _online_acknowledged(self, deadline: float) -> bool:
        """Wait until the broker has the retained online state (so start() means online)."""
        info = self._online_info
        if info is None:
            return True
        try:
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    def _shutdown_client(self) -> None:
        self._stopping = True
        try:
            self._client.disconnect()
            self._client.loop_stop()
        finally:
            self._connected.clear()
            self._current_birth = None
            self._started = False
            self._stopping = False
            self._link_down.clear()

    # ------------------------------------------------------------------ birth

    def _set_will(self) -> None:
        # Every connect gets a will with a fresh seq, so the broker-sent death is never
        # mistaken for a duplicate of an earlier message.  (Its seq is lower than those
        # sent during the connection: it was reserved when the connection began.)
        will = DeviceState(seq=self.next_seq(), ts=now_ms(), state="offline")
        self._client.will_set(
            state_topic(self.store_id, self.device_id), encode(will), qos=1, retain=True
        )

    def send_birth(self) -> Birth:
        """Publish a Birth carrying the birth count of the live connection."""
        count = self._current_birth if self._current_birth is not None else self._birth_count
        birth = Birth(
            seq=self.next_seq(),
            ts=now_ms(),
            device_type=self.device_type,
            firmware=self.firmware,
            birth_count=count,
            plates=self.plates,
            reported=dict(self.settings),
        )
        self.publish(birth_topic(self.store_id, self.device_id), birth)
        return birth

    # ------------------------------------------------------------------ paho callbacks
    # These run on paho's network thread: they must never raise.

    def _on_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        try:
            self._set_will()
        except Exception:
            logger.exception("device %s: cannot set last will", self.device_id)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: Any,
        properties: Any,
    ) -> None:
        if reason_code.is_failure:
            self._last_connect_error = f"connection refused: {reason_code}"
            logger.warning("device %s: %s", self.device_id, self._last_connect_error)
            return
        try:
            with self._birth_lock:
                self._current_birth = self._birth_count
                self._birth_count += 1
            self.send_birth()
            online = DeviceState(seq=self.next_seq(), ts=now_ms(), state="online")
            self._online_info = self.publish(
                state_topic(self.store_id, self.device_id), online, retain=True
            )
            client.subscribe(command_filter(self.store_id, self.device_id), qos=1)
            self._last_connect_error = None
            self._connected.set()
            self.on_online()
        except Exception:
            logger.exception("device %s: error while coming online", self.device_id)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._last_connect_error = "connection failed (broker unreachable?)"
        logger.debug("device %s: %s", self.device_id, self._last_connect_error)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: Any,
        properties: Any,
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        self._current_birth = None
        if was_connected and not self._stopping:
            logger.warning(
                "device %s disconnected (%s); will reconnect", self.device_id, reason_code
            )

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self._handle_command_message(msg.topic, bytes(msg.payload))
        except Exception:
            logger.exception("device %s: error handling message on %s", self.device_id, msg.topic)

    # ------------------------------------------------------------------ commands

    def on_online(self) -> None:
        """Hook for subclasses: called on the network thread after each (re)connect."""

    def handle_command(self, name: str, command: Command) -> tuple[bool, str]:
        """Execute one command; return (ok, detail).  Subclasses may add commands."""
        if self.ota is not None and name in OTA_COMMANDS:
            return self.ota.handle_command(name, command)
        if name == "rebirth":
            self.send_birth()
            return True, ""
        if name == "config":
            unknown = sorted(set(command.args) - set(self.settings))
            if unknown:
                return False, f"unknown settings {unknown}"
            self.settings.update(command.args)
            self.apply_settings()
            reported = Reported(seq=self.next_seq(), ts=now_ms(), reported=dict(self.settings))
            self.publish(reported_topic(self.store_id, self.device_id), reported)
            return True, ""
        return False, f"unknown command {name!r}"

    def apply_settings(self) -> None:
        """Take new settings into effect; subclasses add theirs."""
        self.heartbeat_s = max(MIN_HEARTBEAT_S, float(self.settings["heartbeat_s"]))

    def _handle_command_message(self, topic: str, payload: bytes) -> None:
        name = topic.rsplit("/", 1)[-1]
        if command_topic(self.store_id, self.device_id, name) != topic:
            # amqtt (the demo's embedded broker) sends a connecting client the retained
            # messages of EVERY client's subscriptions, so strays are normal there.
            logger.debug(
                "device %s: ignoring message on unexpected topic %s", self.device_id, topic
            )
            return
        try:
            command = Command.model_validate_json(payload)
        except ValidationError as exc:
            logger.warning(
                "device %s: ignoring malformed command %r: %s",
                self.device_id,
                name,
                exc.errors()[:3],
            )
            return
        try:
            ok, detail = self.handle_command(name, command)
        except Exception as exc:
            logger.exception("device %s: command %r failed", self.device_id, name)
            ok, detail = False, f"command failed: {exc}"
        ack = CommandAck(
            seq=self.next_seq(), ts=now_ms(), cmd_id=command.cmd_id, ok=ok, detail=detail
        )
        self.publish(command_ack_topic(self.store_id, self.device_id, name), ack)
        logger.info(
            "device %s: command %s (%s) -> ok=%s %s",
            self.device_id,
            name,
            command.cmd_id,
            ok,
            detail,
        )
