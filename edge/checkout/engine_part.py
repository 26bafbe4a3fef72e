"""What the checkout engine's parts share: its state, as each mixin sees it, and the
shelf events it holds back.

:class:`EnginePart` is the base of the engine's mixins (:mod:`edge.checkout.camera_views`,
:mod:`edge.checkout.hands`): it declares the state ``CheckoutEngine.__init__`` sets and
the one engine method the parts call back, so each part is typed without repeating them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from devices.layout import Product
from edge.checkout.association import Associator, Attribution
from edge.checkout.busy_hands import BusyHands
from edge.checkout.detector import ShelfDetector, ShelfEvent
from edge.checkout.live_planogram import LivePlanogram
from edge.checkout.sightings import Sightings
from edge.config import DetectorConfig, InferenceConfig
from edge.store.repo import Store


@dataclass(slots=True)
class Held:
    """A shelf event held back until ``deadline_ms``: for a product camera's view, or
    (``shelf_wait``) until its shelf is still."""

    event: ShelfEvent
    token: str | None  # whom association named when it was held
    deadline_ms: int
    split: Attribution | None = None  # a part of an event split between hands: its shopper
    second: bool = False  # it has one view and waits for another (two products?)
    shelf_wait: bool = False  # two hands: it waits for another change on its shelf


class PickLatencies(Protocol):
    def pick_to_cart(self, ms: int) -> None: ...


class EnginePart:
    """The engine's state a part uses (set in ``CheckoutEngine.__init__``)."""

    store: Store
    clock_ms: Callable[[], int]
    latencies: PickLatencies
    shelves: dict[str, ShelfDetector]
    associator: Associator
    busy_hands: BusyHands
    live: LivePlanogram
    open_sessions: set[str]
    sightings: Sightings
    _inference: InferenceConfig
    _detector: DetectorConfig
    _products: dict[str, Product]
    _held: list[Held]

    def _on_shelf_event(
        self,
        event: ShelfEvent,
        *,
        final: bool = False,
        who: Attribution | None = None,
        hold_until: int | None = None,
    ) -> None:
        """Decide one shelf event: the engine's (``CheckoutEngine._on_shelf_event``)."""
        raise NotImplementedError
