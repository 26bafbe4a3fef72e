"""Load-cell signals of a whole shelf over a case, sampled at 60 Hz (numpy, vectorised).

reading = start load + settled changes + hand wobble + drift + noise.

* Start load: a tray tare (300..800 g) plus ``stock`` units of the plate's
  product and 2..6 units of each product sharing the plate.
* Hand wobble: while a hand touches a plate (``start_ms`` .. ``end_ms``) the
  reading shows the old load plus an irregular bump (peak ``bump_g``, ramped in
  and out, mostly pressing but swinging to either sign); at ``end_ms`` it
  settles at the new load.
* Drift: a slow sinusoid plus a random walk, clipped to +/- ``drift_max_g``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from devices.protocol import SAMPLE_RATE_HZ
from firmware_sim.replay.effects import PlateChange
from firmware_sim.replay.realism import Realism
from firmware_sim.replay.store import ReplayStore

Array = npt.NDArray[np.float64]

TARE_RANGE_G = (300.0, 800.0)
SHARED_UNITS = (2, 6)
_RAMP = 0.15  # share of the contact spent pressing in (and letting go) at each end


def first_sample_at(t_ms: int) -> int:
    """Index of the first sample taken at or after ``t_ms``."""
    return -(-t_ms * SAMPLE_RATE_HZ // 1000)


def initial_loads(store: ReplayStore, rng: np.random.Generator) -> dict[str, Array]:
    """The load of every plate of every shelf at the start of the case."""
    shelves = {s.device_id: s for s in store.planogram.shelves}
    loads: dict[str, Array] = {}
    for shelf_id, count in store.plate_counts.items():
        plate_loads = rng.uniform(*TARE_RANGE_G, count)
        shelf = shelves.get(shelf_id)
        for plate in shelf.plates if shelf is not None else ():
            if plate.plate >= count:
                continue
            weight = store.planogram.product(plate.barcode).unit_weight_g
            plate_loads[plate.plate] += plate.stock * weight
            for other in plate.also:
                units = int(rng.integers(SHARED_UNITS[0], SHARED_UNITS[1] + 1))
                plate_loads[plate.plate] += units * store.planogram.product(other).unit_weight_g
        loads[shelf_id] = plate_loads
    return loads


def _wobble(change: PlateChange, t_s: Array, realism: Realism, rng: np.random.Generator) -> Array:
    duration_s = (change.end_ms - change.start_ms) / 1000.0
    u = (t_s - change.start_ms / 1000.0) / duration_s
    envelope = np.clip(np.minimum(u, 1.0 - u) / _RAMP, 0.0, 1.0)
    peak = rng.uniform(*realism.bump_g)
    shape = np.full_like(t_s, rng.uniform(0.3, 1.0))
    for _ in range(3):
        amplitude, hz, phase = (
            rng.uniform(0.2, 0.5),
            rng.uniform(1.5, 8.0),
            rng.uniform(0, 2 * np.pi),
        )
        shape += amplitude * np.sin(2 * np.pi * hz * t_s + phase)
    result: Array = peak * envelope * shape
    return result


def _drift(plates: int, t_s: Array, realism: Realism, rng: np.random.Generator) -> Array:
    limit = realism.drift_max_g
    amplitude = limit * rng.uniform(0.2, 0.6, plates)
    period = rng.uniform(60.0, 300.0, plates)
    phase = rng.uniform(0.0, 2 * np.pi, plates)
    seconds = int(t_s[-1]) + 2 if len(t_s) else 2
    walk = np.cumsum(rng.normal(0.0, 0.05 * limit, (plates, seconds)), axis=1)
    whole = np.minimum(t_s.astype(np.int64), seconds - 2)
    frac = t_s - whole
    walk_t = walk[:, whole] * (1.0 - frac) + walk[:, whole + 1] * frac
    sine = amplitude[:, None] * np.sin(2 * np.pi * t_s[None, :] / period[:, None] + phase[:, None])
    result: Array = np.clip(sine + walk_t, -limit, limit)
    return result


def render_shelf(
    start: Array,
    changes: Sequence[PlateChange],
    samples: int,
    realism: Realism,
    rng: np.random.Generator,
) -> Array:
    """Readings of one shelf, shape (plates, samples), sample ``k`` at ``k / 60`` s."""
    plates = len(start)
    t_s = np.arange(samples, dtype=np.float64) / SAMPLE_RATE_HZ
    signal = np.repeat(start[:, None], samples, axis=1)
    for change in changes:
        begin, end = first_sample_at(change.start_ms), first_sample_at(change.end_ms)
        signal[change.plate, end:] += change.delta_g
        if end > begin and realism.bump_g[1] > 0:
            signal[change.plate, begin:end] += _wobble(change, t_s[begin:end], realism, rng)
    if realism.drift_max_g > 0:
        signal += _drift(plates, t_s, realism, rng)
    if realism.noise_sd_g > 0:
        signal += rng.normal(0.0, realism.noise_sd_g, signal.shape)
    return signal
