"""The store simulator: smart shelves and gates from a planogram, and shoppers with
ground truth, one in the store at a time.

Timing: ``pace`` scales every wait (0.5 = twice as fast) but never below what a
gateway needs to see a change settle: ``contact + SETTLE_S`` between two changes
on the same shelf, and ``EXIT_SETTLE_S`` after the last hand contact ends before
the shopper passes the exit gate.  At pace 1.0 a shopper takes about 5-8 s.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from devices.layout import Planogram
from firmware_sim.device import SimDevice
from firmware_sim.esl import SimEsl
from firmware_sim.faults import FaultConfig, FaultInjector
from firmware_sim.fridge import SimFridge
from firmware_sim.gate import SimGate
from firmware_sim.shelf import SimShelf
from firmware_sim.shopper import Action, PlateKey, plan_shopper
from firmware_sim.truth import ShopperTruth

__all__ = ["Action", "ShopperTruth", "StoreSimulator"]

logger = logging.getLogger(__name__)

#: Tray weight on each plate (included in the load a shelf reports), grams.
TARE_RANGE_G = (200.0, 600.0)
#: Hand contact per change, seconds (physical; not scaled by pace).
CONTACT_RANGE_S = (0.3, 0.6)
#: Quiet time a gateway needs after a contact on the same shelf before the next change.
SETTLE_S = 0.8
#: Quiet time after the last contact ends before the shopper passes the exit gate.
EXIT_SETTLE_S = 1.5
#: Waits at pace 1.0, seconds: after entry, between changes (from the start of one
#: to the start of the next), before exit (from the last change), between shoppers.
ENTRY_WAIT_S = 0.5
ENTRY_MIN_S = 0.25
STEP_WAIT_RANGE_S = (0.9, 1.5)
EXIT_WAIT_RANGE_S = (1.8, 2.4)
BETWEEN_SHOPPERS_RANGE_S = (0.3, 0.8)
BETWEEN_SHOPPERS_MIN_S = 0.2
#: Hand contact while staff refill a plate, seconds.
RESTOCK_CONTACT_S = 1.0


class StoreSimulator:
    """One SimShelf per planogram shelf, an entry and an exit gate, and shoppers."""

    def __init__(
        self,
        planogram: Planogram,
        store_id: str,
        host: str,
        port: int,
        *,
        entry_gate: str,
        exit_gate: str,
        seed: int = 0,
        pace: float = 1.0,
        username: str | None = None,
        password: str | None = None,
        credentials: Mapping[str, tuple[str, str]] | None = None,
        restock_below: int | None = None,
        esls: Sequence[str] = (),
        fridges: Mapping[str, float] | None = None,
        faults: FaultConfig | None = None,
        checkin: Callable[[str], str] | None = None,
    ) -> None:
        """``credentials`` (device id -> (username, password)) overrides the shared
        ``username``/``password`` per device, for brokers with per-device ACLs.
        ``restock_below``: if set, :meth:`run` refills (between shoppers, with nobody
        in the store) every plate whose stock fell below it to its planogram stock.
        ``esls``: ids of electronic shelf labels (blank until the gateway sets them).
        ``fridges``: temperature sensors of cooled units, id -> set point in Celsius.
        ``faults``: what goes wrong (:mod:`firmware_sim.faults`), from :meth:`start` on;
        a fault for a device that is not here is a ValueError now.
        ``checkin``: turns a shopper's name into the token their app shows at the entry
        gate (the store's signed check-in QR); without it the name is the token."""
        if pace <= 0:
            raise ValueError("pace must be > 0")
        self.planogram = planogram
        self.store_id = store_id
        self.seed = seed
        self.pace = pace
        self._rng = random.Random(seed)
        creds = dict(credentials or {})

        def login(device_id: str) -> tuple[str | None, str | None]:
            return creds.get(device_id, (username, password))

        self._units: dict[PlateKey, list[float]] = {}  # actual unit weights on each plate
        self._barcodes: dict[PlateKey, str] = {}
        self.shelves: dict[str, SimShelf] = {}
        for shelf in planogram.shelves:
            loads = [self._rng.uniform(*TARE_RANGE_G) for _ in range(shelf.plate_count)]
            for plate in shelf.plates:
                product = planogram.product(plate.barcode)
                units = [self._unit_weight(plate.barcode) for _ in range(plate.stock)]
                key = (shelf.device_id, plate.plate)
                self._units[key] = units
                self._barcodes[key] = product.barcode
                loads[plate.plate] += sum(units)
            user, pw = login(shelf.device_id)
            self.shelves[shelf.device_id] = SimShelf(
                store_id,
                shelf.device_id,
                host,
                port,
                loads,
                rng=random.Random(self._rng.getrandbits(64)),
                username=user,
                password=pw,
            )
        user, pw = login(entry_gate)
        self.entry_gate = SimGate(
            store_id, entry_gate, host, port, "entry", username=user, password=pw
        )
        user, pw = login(exit_gate)
        self.exit_gate = SimGate(
            store_id, exit_gate, host, port, "exit", username=user, password=pw
        )

        self.ground_truth: list[ShopperTruth] = []
        self._truth_lock = threading.Lock()
        self._stock_lock = threading.Lock()
        self._shopper_lock = threading.Lock()  # one shopper in the store at a time
        self._next_index = 0
        self.restock_below = restock_below
        #: (shelf id, plate, units added) for every restock, in order.
        self.restocks: list[tuple[str, int, int]] = []
        self.esls: dict[str, SimEsl] = {}
        for esl_id in esls:
            user, pw = login(esl_id)
            self.esls[esl_id] = SimEsl(store_id, esl_id, host, port, username=user, password=pw)
        self.fridges: dict[str, SimFridge] = {}
        for fridge_id, setpoint in (fridges or {}).items():
            user, pw = login(fridge_id)
            self.fridges[fridge_id] = SimFridge(
                store_id,
                fridge_id,
                host,
                port,
                setpoint_c=setpoint,
                rng=random.Random(self._rng.getrandbits(64)),
                username=user,
                password=pw,
            )
        self.faults = FaultInjector(faults or FaultConfig(), self.devices)
        self.checkin = checkin

    # ------------------------------------------------------------------ devices

    @property
    def devices(self) -> list[SimDevice]:
        return [
            *self.shelves.values(),
            self.entry_gate,
            self.exit_gate,
            *self.esls.values(),
            *self.fridges.values(),
        ]

    def start(self, timeout: float = 10.0) -> None:
        """Connect every device (each blocks until connected); all or nothing."""
        started: list[SimDevice] = []
        try:
            for device in self.devices:
                device.start(timeout)
                started.append(device)
        except BaseException:
            for device in reversed(started):
                device.stop()
            raise
        logger.info("store %s: %d devices online", self.store_id, len(started))
        self.faults.start()

    def stop(self) -> None:
        self.faults.stop()
        for device in reversed(self.devices):
            try:
                device.stop()
            except Exception:
                logger.exception("store %s: cannot stop %s", self.store_id, device.device_id)

    # ------------------------------------------------------------------ stock and truth

    def stock(self, shelf_id: str, plate: int) -> int:
        with self._stock_lock:
            return len(self._units[(shelf_id, plate)])

    def stock_levels(self) -> dict[PlateKey, int]:
        with self._stock_lock:
            return {key: len(units) for key, units in self._units.items()}

    def barcode(self, shelf_id: str, plate: int) -> str:
        return self._barcodes[(shelf_id, plate)]

    def truths(self) -> list[ShopperTruth]:
        """A snapshot of ``ground_truth``."""
        with self._truth_lock:
            return list(self.ground_truth)

    def restock(self, shelf_id: str, plate: int, quantity: int) -> None:
        """Staff put ``quantity`` units on a plate (nobody shopping meanwhile).

        Returns once the shelf has had time to settle.  Not part of any shopper's truth.
        """
        key = (shelf_id, plate)
        if key not in self._units:
            raise ValueError(f"no product on shelf {shelf_id!r} plate {plate}")
        if quantity < 1:
            raise ValueError(f"quantity must be >= 1, got {quantity}")
        with self._shopper_lock:
            units = [self._unit_weight(self._barcodes[key]) for _ in range(quantity)]
            contact = RESTOCK_CONTACT_S
            with self._stock_lock:
                self._units[key].extend(units)
            self.shelves[shelf_id].change(plate, sum(units), contact)
            self.restocks.append((shelf_id, plate, quantity))
            logger.info(
                "store %s: restocked %s/%d with %d", self.store_id, shelf_id, plate, quantity
            )
            time.sleep(contact + EXIT_SETTLE_S)

    def _restock_low_plates(self) -> None:
        if self.restock_below is None:
            return
        for shelf in self.planogram.shelves:
            for plate in shelf.plates:
                missing = plate.stock - self.stock(shelf.device_id, plate.plate)
                if self.stock(shelf.device_id, plate.plate) < self.restock_below and missing > 0:
                    self.restock(shelf.device_id, plate.plate, missing)

    # ------------------------------------------------------------------ shoppers

    def run_shopper(self, index: int) -> ShopperTruth:
        """One random shopper: entry, 2-4 picks (maybe a put-back), exit."""
        with self._shopper_lock:
            self._next_index = max(self._next_index, index + 1)
            actions = plan_shopper(self._rng, self.stock_levels(), index)
            name = f"shopper-{self.seed}-{index:04d}"
            return self._perform(self.checkin(name) if self.checkin else name, actions)

    def run_script(self, token: str, actions: list[tuple[str, str, int, int]]) -> ShopperTruth:
        """A scripted shopper: ``actions`` are ("pick"|"putback", shelf id, plate, quantity).

        Raises ValueError (before entering) if the script takes more than a plate
        holds or puts back more than this shopper took from that plate.
        """
        with self._shopper_lock:
            return self._perform(token, list(actions))

    def run(
        self,
        stop: threading.Event,
        max_shoppers: int | None = None,
        on_done: Callable[[ShopperTruth], None] | None = None,
    ) -> None:
        """Shoppers one after another until ``stop`` is set (the current one finishes)
        or ``max_shoppers`` have left."""
        done = 0
        while not stop.is_set() and (max_shoppers is None or done < max_shoppers):
            truth = self.run_shopper(self._next_index)
            done += 1
            if on_done is not None:
                try:
                    on_done(truth)
                except Exception:
                    logger.exception("store %s: on_done failed for %s", self.store_id, truth.token)
            if max_shoppers is not None and done >= max_shoppers:
                break
            self._restock_low_plates()
            stop.wait(self._paced(BETWEEN_SHOPPERS_RANGE_S, BETWEEN_SHOPPERS_MIN_S))

    # ------------------------------------------------------------------ internals

    def _unit_weight(self, barcode: str) -> float:
        product = self.planogram.product(barcode)
        weight = self._rng.gauss(product.unit_weight_g, product.weight_sd_g)
        return max(product.unit_weight_g * 0.5, weight)

    def _paced(self, wait_range: tuple[float, float], floor: float = 0.0) -> float:
        return max(floor, self.pace * self._rng.uniform(*wait_range))

    def _validate(self, actions: list[Action]) -> None:
        left = self.stock_levels()
        held: dict[PlateKey, int] = {}
        for kind, shelf_id, plate, quantity in actions:
            key = (shelf_id, plate)
            if key not in left:
                raise ValueError(f"no product on shelf {shelf_id!r} plate {plate}")
            if quantity < 1:
                raise ValueError(f"quantity must be >= 1, got {quantity}")
            if kind == "pick":
                if quantity > left[key]:
                    raise ValueError(
                        f"cannot pick {quantity} from {shelf_id} plate {plate}: {left[key]} left"
                    )
                left[key] -= quantity
                held[key] = held.get(key, 0) + quantity
            elif kind == "putback":
                if quantity > held.get(key, 0):
                    raise ValueError(
                        f"cannot put back {quantity} on {shelf_id} plate {plate}: "
                        f"the shopper took {held.get(key, 0)} from there"
                    )
                left[key] += quantity
                held[key] -= quantity
            else:
                raise ValueError(f"unknown action {kind!r} (pick or putback)")

    def _move_units(
        self, kind: str, key: PlateKey, quantity: int, held: dict[PlateKey, list[float]]
    ) -> float:
        """Move units between plate and hand; return the change of plate load (grams)."""
        with self._stock_lock:
            if kind == "pick":
                units = [self._units[key].pop() for _ in range(quantity)]
                held.setdefault(key, []).extend(units)
                return -sum(units)
            units = [held[key].pop() for _ in range(quantity)]
            self._units[key].extend(units)
            return sum(units)

    def _perform(self, token: str, actions: list[Action]) -> ShopperTruth:
        self._validate(actions)
        started = time.monotonic()
        self.entry_gate.pass_through(token)
        time.sleep(self._paced((ENTRY_WAIT_S, ENTRY_WAIT_S), ENTRY_MIN_S))

        held: dict[PlateKey, list[float]] = {}
        lines: dict[str, int] = {}
        # Earliest monotonic time of the next change: overall, and per shelf.
        hand_free_at = 0.0
        shelf_ready_at: dict[str, float] = {}
        exit_at = time.monotonic() + self._paced(EXIT_WAIT_RANGE_S)
        for kind, shelf_id, plate, quantity in actions:
            key = (shelf_id, plate)
            ready = max(hand_free_at, shelf_ready_at.get(shelf_id, 0.0))
            delay = ready - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            contact = self._rng.uniform(*CONTACT_RANGE_S)
            delta = self._move_units(kind, key, quantity, held)
            self.shelves[shelf_id].change(plate, delta, contact)
            now = time.monotonic()
            barcode = self._barcodes[key]
            lines[barcode] = lines.get(barcode, 0) + (quantity if kind == "pick" else -quantity)
            logger.debug(
                "%s: %s %d x %s on %s/%d (%+.0f g)",
                token,
                kind,
                quantity,
                barcode,
                shelf_id,
                plate,
                delta,
            )
            hand_free_at = now + self._paced(STEP_WAIT_RANGE_S, contact)
            shelf_ready_at[shelf_id] = now + contact + SETTLE_S
            exit_at = now + self._paced(EXIT_WAIT_RANGE_S, contact + EXIT_SETTLE_S)
        delay = exit_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self.exit_gate.pass_through(token)

        truth = ShopperTruth.from_lines(token, lines, self.planogram)
        with self._truth_lock:
            self.ground_truth.append(truth)
        logger.info(
            "%s left after %.1f s with %s (total %d)",
            token,
            time.monotonic() - started,
            truth.lines,
            truth.total_minor,
        )
        return truth
