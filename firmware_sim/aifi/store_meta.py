"""Read the AiFi ``store_meta`` JSON files into world-placed boxes.

Gondolas are placed relative to the world, shelves relative to their gondola
and plates relative to their shelf; see :mod:`firmware_sim.aifi.geometry`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from firmware_sim.aifi.geometry import Box, Pose, Vec

ShelfKey = tuple[int, int]  # (gondola, shelf index), both 1-based as in AiFi
PlateKey = tuple[int, int, int]  # (gondola, shelf index, plate index), 1-based


@dataclass(frozen=True)
class StoreMeta:
    gondolas: dict[int, Box]
    shelves: dict[ShelfKey, Box]
    plates: dict[PlateKey, Box]

    def plate_indices(self, key: ShelfKey) -> list[int]:
        """The AiFi plate indices (1-based) of one shelf, ascending."""
        return sorted(p for (g, s, p) in self.plates if (g, s) == key)


def _read(path: Path, key: str) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        data = json.load(fh)
    items = data[key]
    if not isinstance(items, list):
        raise ValueError(f"{path}: {key!r} is not a list")
    return items


def _dims(coordinates: dict[str, Any]) -> Vec:
    return np.array(
        [float(coordinates["dim_x"]), float(coordinates["dim_y"]), float(coordinates["dim_z"])]
    )


def read_store_meta(meta_dir: Path) -> StoreMeta:
    """Parse ``Gondolas.json``, ``Shelves.json`` and ``Plates.json`` of ``meta_dir``."""
    gondolas: dict[int, Box] = {}
    for item in _read(meta_dir / "Gondolas.json", "gondolas"):
        coords = item["coordinates"]
        gid = int(item["id"]["id"])
        gondolas[gid] = Box(Pose.from_aifi(coords["transform"]), _dims(coords))

    shelves: dict[ShelfKey, Box] = {}
    for item in _read(meta_dir / "Shelves.json", "shelves"):
        coords = item["coordinates"]
        key = (int(item["id"]["gondola_id"]["id"]), int(item["id"]["shelf_index"]))
        if key[0] not in gondolas:
            raise ValueError(f"shelf {key} is on unknown gondola {key[0]}")
        pose = gondolas[key[0]].pose.compose(Pose.from_aifi(coords["transform"]))
        shelves[key] = Box(pose, _dims(coords))

    plates: dict[PlateKey, Box] = {}
    for item in _read(meta_dir / "Plates.json", "plates"):
        coords = item["coordinates"]
        sid = item["id"]["shelf_id"]
        shelf_key = (int(sid["gondola_id"]["id"]), int(sid["shelf_index"]))
        if shelf_key not in shelves:
            raise ValueError(f"plate {item['id']} is on unknown shelf {shelf_key}")
        pose = shelves[shelf_key].pose.compose(Pose.from_aifi(coords["transform"]))
        plates[(*shelf_key, int(item["id"]["plate_index"]))] = Box(pose, _dims(coords))
    return StoreMeta(gondolas, shelves, plates)
