"""What the replay needs to know about a store (an AiFi store or any other)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from devices.layout import Planogram

XY = tuple[float, float]


class ReplayStore(Protocol):
    @property
    def planogram(self) -> Planogram: ...

    @property
    def plate_counts(self) -> Mapping[str, int]:
        """Physical plates per shelf id, every shelf of the store (in publishing order)."""
        ...

    @property
    def entrance_xy(self) -> XY: ...

    def stand_xy(self, shelf_id: str, plate: int) -> XY:
        """Where a shopper stands to reach ``plate`` of ``shelf_id``."""
        ...
