"""A simulated electronic shelf label (ESL): shows one product's price.

The label knows nothing by itself: what it shows (``barcode``, ``price_minor``,
``currency``) are settings of its twin, sent by the gateway as ``cmd/config``.
It checks them, redraws the display, reports the settings it now runs
(``event/reported``) and acknowledges the command.  Every redraw costs battery,
which it reports in its heartbeats.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from devices.protocol import Command, DeviceType, Heartbeat
from firmware_sim.device import SimDevice

logger = logging.getLogger(__name__)

#: Battery used by one e-paper redraw, percent (a coin cell lasts some thousand).
REDRAW_COST_PCT = 0.02
_CURRENCY_LEN = 3


@dataclass(frozen=True, slots=True)
class Display:
    """What the label shows right now."""

    barcode: str
    price_minor: int
    currency: str

    @property
    def text(self) -> str:
        if not self.barcode:
            return "(blank)"
        units, cents = divmod(self.price_minor, 100)
        return f"{self.barcode}  {units}.{cents:02d} {self.currency}".rstrip()


class SimEsl(SimDevice):
    """A shelf label whose content is set through its twin (``cmd/config``)."""

    def __init__(
        self,
        store_id: str,
        device_id: str,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        firmware: str = "sim-esl-1.0.0",
        battery_pct: float = 100.0,
        heartbeat_s: float = 5.0,
    ) -> None:
        super().__init__(
            store_id,
            device_id,
            host,
            port,
            device_type=DeviceType.ESL,
            username=username,
            password=password,
            firmware=firmware,
            heartbeat_s=heartbeat_s,
        )
        # A new label is blank until the gateway tells it what to show.
        self.settings.update({"barcode": "", "price_minor": 0, "currency": ""})
        self._lock = threading.Lock()
        self._battery = battery_pct
        self.redraws = 0
        self.display = Display("", 0, "")

    @property
    def battery_pct(self) -> float:
        with self._lock:
            return self._battery

    def handle_command(self, name: str, command: Command) -> tuple[bool, str]:
        if name == "config":
            problem = _check(command.args)
            if problem:
                return False, problem
        return super().handle_command(name, command)

    def apply_settings(self) -> None:
        super().apply_settings()
        shown = Display(
            str(self.settings["barcode"]),
            int(self.settings["price_minor"]),
            str(self.settings["currency"]),
        )
        if shown != self.display:
            with self._lock:
                self.display = shown
                self.redraws += 1
                self._battery = max(0.0, self._battery - REDRAW_COST_PCT)
            logger.info("label %s shows %s", self.device_id, shown.text)

    def heartbeat(self) -> Heartbeat:
        beat = super().heartbeat()
        return beat.model_copy(update={"battery_pct": round(self.battery_pct, 2)})


def _check(args: dict[str, object]) -> str:
    """Why these settings cannot be shown ('' when they can)."""
    problems = []
    price = args.get("price_minor")
    if "price_minor" in args and (isinstance(price, bool) or not isinstance(price, int)):
        problems.append(f"price_minor must be an integer, got {price!r}")
    elif isinstance(price, int) and price < 0:
        problems.append(f"price_minor must be >= 0, got {price}")
    if "barcode" in args and not isinstance(args["barcode"], str):
        problems.append(f"barcode must be text, got {args['barcode']!r}")
    currency = args.get("currency")
    if "currency" in args and not (
        isinstance(currency, str) and (currency == "" or len(currency) == _CURRENCY_LEN)
    ):
        problems.append(f"currency must be a 3-letter code, got {currency!r}")
    return "; ".join(problems)


__all__ = ["Display", "SimEsl"]
