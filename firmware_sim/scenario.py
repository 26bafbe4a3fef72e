"""A shopping case as data: who takes what from where and when.

Both the AiFi ground-truth loader and the synthetic case generator produce
:class:`Case` objects; the replay synthesiser turns a case into device
messages (shelf weights, gates, shopper positions) and its ground truth.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class CaseEvent:
    """One labelled interaction.

    ``kind`` is ``pick`` or ``putback`` (a weight change on ``plates`` of
    ``shelf_id``), or ``handoff`` (``quantity`` units of ``barcode`` move from
    ``shopper`` to ``to_shopper`` with no weight change).
    """

    t_ms: int  # from the start of the case
    shopper: str
    kind: Literal["pick", "putback", "handoff"]
    barcode: str
    quantity: int = 1
    shelf_id: str = ""
    plates: tuple[int, ...] = ()
    to_shopper: str = ""
    hold_ms: int = 0  # extra time the hand rests on the shelf before the change


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    shoppers: tuple[str, ...]
    events: tuple[CaseEvent, ...]
    # shopper -> (entry ms, exit ms); the synthesiser fills gaps when empty
    visits: dict[str, tuple[int, int]] = field(default_factory=dict)

    def receipts(self) -> dict[str, dict[str, int]]:
        """The true receipt of every shopper: picks minus put-backs, after hand-offs."""
        carts: dict[str, Counter[str]] = {s: Counter() for s in self.shoppers}
        for ev in sorted(self.events, key=lambda e: e.t_ms):
            cart = carts.setdefault(ev.shopper, Counter())
            if ev.kind == "pick":
                cart[ev.barcode] += ev.quantity
            elif ev.kind == "putback":
                cart[ev.barcode] -= ev.quantity
            else:
                cart[ev.barcode] -= ev.quantity
                carts.setdefault(ev.to_shopper, Counter())[ev.barcode] += ev.quantity
        return {s: {b: q for b, q in sorted(c.items()) if q > 0} for s, c in carts.items()}
