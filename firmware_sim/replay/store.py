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

    def plate_xy(self, shelf_id: str, plate: int) -> XY:
        """The plate's centre on the floor plan."""
        ...

    def plate_z(self, shelf_id: str, plate: int) -> float:
        """The plate's height above the floor."""
        ...

    def stand_xy(self, shelf_id: str, plate: int) -> XY:
        """Where a shopper stands to reach ``plate`` of ``shelf_id``."""
        ...
