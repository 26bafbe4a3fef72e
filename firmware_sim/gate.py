"""A simulated entry/exit gate: a shopper scans the app's QR code and walks through."""

from __future__ import annotations

import logging
from typing import Literal

from devices.protocol import DeviceType, GateEvent, gate_topic
from firmware_sim.device import SimDevice, now_ms

logger = logging.getLogger(__name__)

#: How long pass_through() waits for the broker's PUBACK.
_ACK_WAIT_S = 2.0


class SimGate(SimDevice):
    """A gate that publishes a :class:`GateEvent` per shopper passing through."""

    def __init__(
        self,
        store_id: str,
        device_id: str,
        host: str,
        port: int,
        direction: Literal["entry", "exit"],
        *,
        username: str | None = None,
        password: str | None = None,
        firmware: str = "sim-1.0.0",
    ) -> None:
        super().__init__(
            store_id,
            device_id,
            host,
            port,
            device_type=DeviceType.GATE,
            username=username,
            password=password,
            firmware=firmware,
        )
        self.direction: Literal["entry", "exit"] = direction

    def pass_through(self, session_token: str) -> GateEvent:
        """Publish the gate event and wait (briefly) until the broker has it."""
        event = GateEvent(
            seq=self.next_seq(),
            ts=now_ms(),
            direction=self.direction,
            session_token=session_token,
        )
        info = self.publish(gate_topic(self.store_id, self.device_id), event)
        if self.connected:
            try:
                info.wait_for_publish(_ACK_WAIT_S)
            except (RuntimeError, ValueError) as exc:
                logger.warning(
                    "gate %s: event for %s not confirmed: %s", self.device_id, session_token, exc
                )
        else:
            logger.warning("gate %s offline: event for %s queued", self.device_id, session_token)
        logger.info("gate %s: %s %s", self.device_id, self.direction, session_token)
        return event
