"""A plain paho subscriber to everything published in one store (real broker)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devices.protocol import decode, store_filter
from tests.integration.conftest import wait_for


class Wire:
    """Everything published in one store, in arrival order."""

    def __init__(self, host: str, port: int, store_id: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *_: subscribed.set()
        self._client.connect(host, port)
        self._client.loop_start()
        self._client.subscribe(store_filter(store_id), qos=1)
        assert subscribed.wait(5), "no SUBACK"

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def on(self, topic: str) -> list[bytes]:
        with self._lock:
            return [payload for t, payload, _ in self.messages if t == topic]

    def decoded(self, topic: str) -> list:  # type: ignore[type-arg]
        return [decode(topic, payload).message for payload in self.on(topic)]

    def wait_for(self, check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        wait_for(check, timeout, what)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
