"""What a random shopper does: a plan of picks and put-backs drawn from the stock.

Pure (no MQTT, no clock): the store simulator performs the plan.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Literal

#: ("pick" | "putback", shelf device id, plate, quantity)
Action = tuple[str, str, int, int]
ActionKind = Literal["pick", "putback"]
PlateKey = tuple[str, int]

MIN_PICKS = 2
MAX_PICKS = 4
#: Chance that a pick takes two units at once (where the plate holds two).
DOUBLE_PICK_P = 0.25
#: Odd-numbered shoppers put something back with this chance; even ones always do.
EXTRA_PUTBACK_P = 0.3


def plan_shopper(rng: random.Random, stock: Mapping[PlateKey, int], index: int) -> list[Action]:
    """Draw 2-4 picks from plates with stock (never more than a plate holds), and for
    every even ``index`` (and some odd ones) put one taken unit back where it came from."""
    left = dict(stock)
    picks: list[Action] = []
    for _ in range(rng.randint(MIN_PICKS, MAX_PICKS)):
        choices = [key for key, count in left.items() if count > 0]
        if not choices:
            break
        shelf_id, plate = rng.choice(choices)
        quantity = 2 if left[(shelf_id, plate)] >= 2 and rng.random() < DOUBLE_PICK_P else 1
        left[(shelf_id, plate)] -= quantity
        picks.append(("pick", shelf_id, plate, quantity))
    wants_putback = index % 2 == 0 or rng.random() < EXTRA_PUTBACK_P
    if not (wants_putback and picks):
        return picks
    after = rng.randint(1, len(picks))  # put back after at least one pick
    _, shelf_id, plate, _ = rng.choice(picks[:after])
    return [*picks[:after], ("putback", shelf_id, plate, 1), *picks[after:]]
