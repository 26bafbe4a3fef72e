"""A simulated fridge or freezer temperature sensor (battery powered, radio linked).

The cabinet temperature follows a first-order model: the compressor pulls it
toward the set point, an open door or a failed compressor lets it drift toward
the room.  Readings are published as :class:`Temperature` telemetry.
"""

from __future__ import annotations

import logging
import random
import threading

from devices.protocol import DeviceType, Heartbeat, Temperature, temperature_topic
from firmware_sim.device import SimDevice, Ticker, now_ms

logger = logging.getLogger(__name__)

#: Time constants of the cabinet model, in seconds.
_COOLING_TAU_S = 600.0
_WARMING_TAU_S = 1800.0
_DOOR_TAU_S = 300.0


class SimFridge(SimDevice):
    """A temperature sensor in a cooled unit, publishing every ``period_s``."""

    def __init__(
        self,
        store_id: str,
        device_id: str,
        host: str,
        port: int,
        *,
        setpoint_c: float = 4.0,
        room_c: float = 21.0,
        period_s: float = 5.0,
        rng: random.Random | None = None,
        username: str | None = None,
        password: str | None = None,
        firmware: str = "sim-fridge-1.0.0",
        heartbeat_s: float = 30.0,
    ) -> None:
        super().__init__(
            store_id,
            device_id,
            host,
            port,
            device_type=DeviceType.FRIDGE,
            username=username,
            password=password,
            firmware=firmware,
            heartbeat_s=heartbeat_s,
        )
        self.setpoint_c = setpoint_c
        self.room_c = room_c
        self.period_s = period_s
        self.celsius = setpoint_c
        self.door_open = False
        self.compressor_ok = True
        self.battery_pct = 100.0
        self.readings_sent = 0
        self._rng = rng or random.Random()
        self._model_lock = threading.Lock()
        self._ticker = Ticker(f"fridge-{device_id}", period_s, self._read_and_publish)

    # ------------------------------------------------------------------ the cabinet

    def fail_compressor(self, failed: bool = True) -> None:
        """A cold-chain fault: the unit warms toward the room until repaired."""
        with self._model_lock:
            self.compressor_ok = not failed

    def set_temperature(self, celsius: float) -> None:
        """Put the cabinet at ``celsius`` now (a test or a demo skipping the slow warm-up)."""
        with self._model_lock:
            self.celsius = celsius

    def set_door(self, open_: bool) -> None:
        with self._model_lock:
            self.door_open = open_

    def advance(self, dt_s: float) -> float:
        """Move the cabinet model ``dt_s`` seconds on; returns the new temperature."""
        with self._model_lock:
            if self.door_open:
                target, tau = self.room_c, _DOOR_TAU_S
            elif self.compressor_ok:
                target, tau = self.setpoint_c, _COOLING_TAU_S
            else:
                target, tau = self.room_c, _WARMING_TAU_S
            self.celsius += (target - self.celsius) * min(1.0, dt_s / tau)
            self.battery_pct = max(0.0, self.battery_pct - dt_s * 1e-5)
            return self.celsius

    def reading(self) -> Temperature:
        with self._model_lock:
            celsius = self.celsius + self._rng.gauss(0.0, 0.05)
            door = self.door_open
        return Temperature(
            seq=self.next_seq(), ts=now_ms(), celsius=round(celsius, 2), door_open=door
        )

    def heartbeat(self) -> Heartbeat:
        base = super().heartbeat()
        return base.model_copy(update={"battery_pct": round(self.battery_pct, 1), "rssi_dbm": -60})

    # ------------------------------------------------------------------ life cycle

    def start(self, timeout: float = 10.0) -> None:
        super().start(timeout)
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()
        super().stop()

    def _read_and_publish(self) -> None:
        self.advance(self.period_s)
        if self.connected:
            self.publish(temperature_topic(self.store_id, self.device_id), self.reading())
            self.readings_sent += 1
