"""How far a synthesised store departs from clean signals."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Realism:
    """Imperfections of the synthesised device messages.

    * ``noise_sd_g``: gaussian noise on every load-cell sample.
    * ``drift_max_g``: slow drift per plate (a sinusoid plus a random walk),
      kept within +/- this over the case.
    * ``transient_s``: range of the hand-contact time before a change settles;
      during it the touched plates wobble by ``bump_g`` (peak, either sign).
    * ``item_spread``: item weights vary around the product weight by
      ``item_spread * weight_sd_g`` (0: every item weighs exactly its unit weight).
    * ``loss``: share of weight messages dropped (their ``seq`` is consumed).
    * ``disorder``: share of weight messages duplicated or swapped with the next
      message of the same shelf (half each).
    * ``position_noise_m``: gaussian noise per tracked coordinate.
    * ``position_hz``: tracker messages per second.
    * ``hand_noise_m``: gaussian noise per coordinate of the reaching hand, as a
      ceiling-camera pose tracker reports it; ``hands=False`` sends bodies only.
    """

    noise_sd_g: float = 3.0
    drift_max_g: float = 20.0
    transient_s: tuple[float, float] = (0.3, 2.0)
    bump_g: tuple[float, float] = (30.0, 300.0)
    item_spread: float = 1.0
    loss: float = 0.01
    disorder: float = 0.01
    position_noise_m: float = 0.15
    position_hz: float = 10.0
    hands: bool = True
    hand_noise_m: float = 0.08

    def __post_init__(self) -> None:
        lo, hi = self.transient_s
        if not 0.0 <= lo <= hi:
            raise ValueError(f"transient_s must be 0 <= lo <= hi, got {self.transient_s}")
        if not 0.0 <= self.bump_g[0] <= self.bump_g[1]:
            raise ValueError(f"bump_g must be 0 <= lo <= hi, got {self.bump_g}")
        if min(self.loss, self.disorder) < 0.0 or self.loss + self.disorder > 1.0:
            raise ValueError("loss and disorder must be shares that add up to at most 1")
        if self.position_hz <= 0:
            raise ValueError("position_hz must be > 0")
        if min(self.noise_sd_g, self.drift_max_g, self.item_spread, self.position_noise_m) < 0:
            raise ValueError("noise, drift, spread and position noise must be >= 0")

    @classmethod
    def off(cls) -> Realism:
        """Clean signals: no noise, drift, loss or disorder; a short step, exact weights."""
        return cls(
            noise_sd_g=0.0,
            drift_max_g=0.0,
            transient_s=(0.2, 0.2),
            bump_g=(0.0, 0.0),
            item_spread=0.0,
            loss=0.0,
            disorder=0.0,
            position_noise_m=0.0,
            hand_noise_m=0.0,
        )
