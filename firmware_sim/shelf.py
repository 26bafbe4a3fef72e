"""A simulated smart shelf: one load cell per plate, sampled at 60 Hz, sent in batches.

Plates report raw readings (see :class:`LoadCell`); a test can give a plate an
offset and gain (an uncalibrated plate), put a calibration weight on it, and
inject faults (stuck, noisy, drift, saturate) for the plate health monitor.
"""

from __future__ import annotations

import logging
import random
import threading
import time

from devices.calibration import DEFAULT_FULL_SCALE_RAW
from devices.protocol import (
    SAMPLE_RATE_HZ,
    SAMPLES_PER_BATCH,
    DeviceType,
    WeightBatch,
    weight_topic,
)
from firmware_sim.device import SimDevice
from firmware_sim.loadcell import Fault, LoadCell

logger = logging.getLogger(__name__)

#: Seconds covered by one WeightBatch (12 samples at 60 Hz = 0.2 s).
BATCH_PERIOD_S = SAMPLES_PER_BATCH / SAMPLE_RATE_HZ
#: Readings are sent with this many decimals (a 0.1 g ADC resolution).
_DECIMALS = 1


class SimShelf(SimDevice):
    """A shelf whose plates are :class:`LoadCell` models.

    Once connected, a publishing thread sends one :class:`WeightBatch` per
    ``BATCH_PERIOD_S``.  The schedule is derived from the start time (batch ``k``
    is due at ``start + (k + 1) * BATCH_PERIOD_S``), so it never drifts; a late
    thread catches up.  ``ts`` is the wall-clock ms of the batch's first sample.
    While the broker is unreachable batches are dropped but still numbered, so
    the gateway sees the gap in ``seq``.
    """

    def __init__(
        self,
        store_id: str,
        device_id: str,
        host: str,
        port: int,
        initial_loads_g: list[float],
        *,
        rng: random.Random,
        noise_sd_g: float = 1.5,
        drift_g_per_s: float = 0.0,
        username: str | None = None,
        password: str | None = None,
        firmware: str = "sim-1.0.0",
        raw_transfer: dict[int, tuple[float, float]] | None = None,
        full_scale_raw: float = DEFAULT_FULL_SCALE_RAW,
    ) -> None:
        """``raw_transfer``: plate -> (offset_raw, gain); other plates report grams."""
        if not initial_loads_g:
            raise ValueError(f"shelf {device_id} needs at least one plate")
        super().__init__(
            store_id,
            device_id,
            host,
            port,
            device_type=DeviceType.SHELF,
            username=username,
            password=password,
            firmware=firmware,
            plates=len(initial_loads_g),
        )
        # One generator per plate, derived from the caller's: deterministic per seed
        # regardless of how sampling and changes interleave across threads.
        self._cells = [
            LoadCell(
                load,
                rng=random.Random(rng.getrandbits(64)),
                noise_sd_g=noise_sd_g,
                drift_g_per_s=drift_g_per_s,
                full_scale_raw=full_scale_raw,
            )
            for load in initial_loads_g
        ]
        for plate, (offset, gain) in (raw_transfer or {}).items():
            self._cell(plate).set_raw_transfer(offset, gain)
        self._test_weights: dict[int, float] = {}
        self._cells_lock = threading.Lock()
        self._origin: float | None = None  # time.monotonic() of sample 0
        self._origin_wall = 0.0  # time.time() of sample 0
        self._stop_publishing = threading.Event()
        self._thread: threading.Thread | None = None
        self.batches_sent = 0
        self.batches_dropped = 0

    @property
    def plate_count(self) -> int:
        return len(self._cells)

    def load_g(self, plate: int) -> float:
        """The true load of ``plate`` once any change in progress has settled."""
        with self._cells_lock:
            return self._cells[plate].true_load_g

    def sample_clock(self) -> float:
        """Seconds since sample 0 (0.0 before publishing started)."""
        origin = self._origin
        return 0.0 if origin is None else time.monotonic() - origin

    def _cell(self, plate: int) -> LoadCell:
        if not 0 <= plate < len(self._cells):
            raise IndexError(f"shelf {self.device_id} has no plate {plate}")
        return self._cells[plate]

    def change(self, plate: int, delta_g: float, contact_s: float = 0.4) -> None:
        """Change the load of ``plate`` by ``delta_g`` grams, starting now, with hand contact."""
        cell = self._cell(plate)
        with self._cells_lock:
            cell.change(delta_g, contact_s, at=self.sample_clock())
        logger.debug(
            "shelf %s plate %d: %+.1f g (contact %.2f s)", self.device_id, plate, delta_g, contact_s
        )

    # ------------------------------------------------------------------ calibration, faults

    def set_raw_transfer(self, plate: int, offset_raw: float, gain: float) -> None:
        """From now on ``plate`` reports ``offset_raw + gain * grams``."""
        cell = self._cell(plate)
        with self._cells_lock:
            cell.set_raw_transfer(offset_raw, gain)

    def place_test_weight(self, plate: int, grams: float, contact_s: float = 0.4) -> None:
        """Put a calibration weight of ``grams`` on ``plate`` (one at a time per plate)."""
        if not grams > 0:
            raise ValueError("a test weight must weigh something")
        if plate in self._test_weights:
            raise ValueError(f"plate {plate} already holds a test weight")
        self.change(plate, grams, contact_s)
        self._test_weights[plate] = grams

    def remove_test_weight(self, plate: int, contact_s: float = 0.4) -> None:
        """Take the calibration weight off ``plate`` again."""
        grams = self._test_weights.pop(plate)
        self.change(plate, -grams, contact_s)

    def inject(self, plate: int, fault: Fault, value: float = 0.0) -> None:
        """Break ``plate``'s load cell from now on, until :meth:`clear_faults`.

        stuck: the output freezes at its current value (zero variance); noisy: the
        noise sd becomes ``value`` grams; drift: ``value`` grams per minute of slow
        drift is added; saturate: the output is pinned at full scale.
        """
        cell = self._cell(plate)
        with self._cells_lock:
            cell.inject(fault, value, self.sample_clock())
        logger.info("shelf %s plate %d: fault %s (%s)", self.device_id, plate, fault, value)

    def clear_faults(self, plate: int | None = None) -> None:
        """Repair one plate, or every plate of the shelf."""
        cells = self._cells if plate is None else [self._cell(plate)]
        with self._cells_lock:
            for cell in cells:
                cell.clear_faults()

    # ------------------------------------------------------------------ life cycle

    def start(self, timeout: float = 10.0) -> None:
        super().start(timeout)
        if self._origin is None:
            # The sample clock starts once, at the first connect; a restart after stop()
            # continues the load cells' timeline.
            self._origin, self._origin_wall = time.monotonic(), time.time()
        self._stop_publishing.clear()
        self._thread = threading.Thread(
            target=self._publish_loop, name=f"shelf-{self.device_id}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop_publishing.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        super().stop()

    # ------------------------------------------------------------------ publishing

    def _publish_loop(self) -> None:
        topic = weight_topic(self.store_id, self.device_id)
        origin_mono = self._origin if self._origin is not None else time.monotonic()
        origin_wall = self._origin_wall
        batch = int((time.monotonic() - origin_mono) / BATCH_PERIOD_S)
        while True:
            delay = origin_mono + (batch + 1) * BATCH_PERIOD_S - time.monotonic()
            if self._stop_publishing.wait(max(0.0, delay)):
                return
            try:
                self._send_batch(topic, batch, origin_wall)
            except Exception:
                logger.exception("shelf %s: cannot send batch %d", self.device_id, batch)
            batch += 1

    def _send_batch(self, topic: str, batch: int, origin_wall: float) -> None:
        first = batch * SAMPLES_PER_BATCH
        times = [(first + i) / SAMPLE_RATE_HZ for i in range(SAMPLES_PER_BATCH)]
        with self._cells_lock:
            samples = [[round(cell.sample(t), _DECIMALS) for t in times] for cell in self._cells]
        message = WeightBatch(
            seq=self.next_seq(),
            ts=int((origin_wall + times[0]) * 1000),
            rate_hz=SAMPLE_RATE_HZ,
            samples=samples,
        )
        if not self.connected:
            self.batches_dropped += 1
            return
        self.publish(topic, message)
        self.batches_sent += 1
