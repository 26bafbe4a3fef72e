"""The gateway's MQTT connection: paho-mqtt 2.x, supervised, with manual acks.

* ``on_message`` only enqueues; the gateway's worker handles the message,
  commits to SQLite and only then acks it (``manual_ack=True``), so a QoS 1
  message the broker sees acknowledged is already on disk.
* The network loop runs in a thread of our own; a supervisor notices when that
  thread dies (or stays disconnected) and starts it again, with backoff.
* A broker that is down at start is retried with backoff and one clear log
  line per attempt, never a traceback.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from devices.protocol import DeviceState, encode, gateway_state_topic

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Received:
    topic: str
    payload: bytes
    mid: int
    qos: int


class MqttLink:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        client_id: str,
        store_id: str,
        subscriptions: list[str],
        inbox: queue.Queue[Received],
        username: str | None = None,
        password: str | None = None,
        keepalive_s: int = 30,
        qos: int = 1,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 30.0,
    ) -> None:
        self.host, self.port = host, port
        self._subscriptions = subscriptions
        self._inbox = inbox
        self._qos = qos
        self._min_backoff, self._max_backoff = reconnect_min_s, reconnect_max_s
        self._keepalive = keepalive_s
        self._state_topic = gateway_state_topic(store_id)
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._net_thread: threading.Thread | None = None
        self._supervisor: threading.Thread | None = None
        self.restarts = 0
        self.connects = 0
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,  # keep our subscriptions and queued QoS 1 messages
            manual_ack=True,
        )
        if username:
            self.client.username_pw_set(username, password)
        self.client.will_set(self._state_topic, self._state("offline"), qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=int(max(1, reconnect_max_s)))
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    @staticmethod
    def _state(state: str) -> bytes:
        return encode(DeviceState(seq=0, ts=int(time.time() * 1000), state=state))

    # ------------------------------------------------------------------ lifecycle

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def start(self) -> None:
        self._supervisor = threading.Thread(
            target=self._supervise, name="mqtt-supervisor", daemon=True
        )
        self._supervisor.start()

    def stop(self) -> None:
        self._stop.set()
        if self._connected.is_set():
            info = self.client.publish(
                self._state_topic, self._state("offline"), qos=1, retain=True
            )
            info.wait_for_publish(timeout=2)
        self.client.disconnect()
        if self._net_thread is not None:
            self._net_thread.join(timeout=5)
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)

    def _supervise(self) -> None:
        backoff = self._min_backoff
        while not self._stop.is_set():
            if self._net_thread is None or not self._net_thread.is_alive():
                if self._net_thread is not None:
                    self.restarts += 1
                    log.warning("MQTT network loop died; restarting it")
                if not self._connect_once():
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, self._max_backoff)
                    continue
                backoff = self._min_backoff
                self._net_thread = threading.Thread(
                    target=self._network_loop, name="mqtt-network", daemon=True
                )
                self._net_thread.start()
            self._stop.wait(0.5)

    def _connect_once(self) -> bool:
        try:
            self.client.connect(self.host, self.port, keepalive=self._keepalive)
        except (OSError, mqtt.WebsocketConnectionError) as exc:
            log.warning(
                "MQTT broker %s:%d unreachable (%s); retrying",
                self.host,
                self.port,
                exc.strerror if isinstance(exc, OSError) and exc.strerror else exc,
            )
            return False
        return True

    def _network_loop(self) -> None:
        try:
            # retry_first_connection=False: the first connect happened already.
            self.client.loop_forever(retry_first_connection=False)
        except Exception:
            log.exception("MQTT network loop crashed")
        finally:
            self._connected.clear()

    # ------------------------------------------------------------------ callbacks

    def _on_connect(
        self, client: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any = None
    ) -> None:
        if rc.is_failure:
            log.error("MQTT broker %s:%d refused the connection: %s", self.host, self.port, rc)
            return
        self.connects += 1
        client.subscribe([(topic, self._qos) for topic in self._subscriptions])
        client.publish(self._state_topic, self._state("online"), qos=1, retain=True)
        log.info("connected to MQTT broker %s:%d", self.host, self.port)

    def _on_subscribe(
        self, _c: mqtt.Client, _u: Any, _mid: int, codes: list[ReasonCode], _p: Any = None
    ) -> None:
        refused = [c for c in codes if c.is_failure]
        if refused:
            log.error("MQTT broker refused subscriptions: %s", refused)
            return
        self._connected.set()  # connected means: subscribed, nothing sent to us is missed

    def _on_disconnect(
        self, _c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any = None
    ) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("disconnected from MQTT broker (%s); reconnecting", rc)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self._inbox.put(Received(msg.topic, bytes(msg.payload), msg.mid, msg.qos))

    # ------------------------------------------------------------------ use

    def ack(self, received: Received) -> None:
        if received.qos > 0:
            self.client.ack(received.mid, received.qos)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=qos, retain=retain)
