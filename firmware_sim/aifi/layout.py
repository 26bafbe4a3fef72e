"""The AiFi Nanostore as a storeedge store: planogram, plate positions, where shoppers stand.

Geometry of the real store (world frame, metres, floor plane x/y): gondolas 1-4
stand in a row along the back wall (x 0.03..4.29, shelves facing -y, front edge
at y = 0.086); gondola 5 is turned by -90 degrees at the east end (x 4.51..4.95,
y -1.22..-0.30), its shelves facing -x.  The open floor is south (-y) of the row.

* ``stand_xy``: a shopper reaching a plate stands :data:`STAND_OFFSET_M` in front
  of the shelf's front edge, level with the plate centre.  "Front" is the side of
  the shelf away from the gondola's back panel: the floor direction from the
  gondola box centre to the shelf box centre.
* ``entrance_xy``: the middle of the open side of the store, :data:`ENTRANCE_GAP_M`
  south of the southern-most gondola edge, at the x centre of all gondolas:
  (2.49, -2.22).  It lies inside the camera calibration's world box
  (y >= -2.79 m) and 2-3 m from every stand point.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from devices.layout import Planogram
from firmware_sim.aifi.geometry import Box, Vec, union_rect
from firmware_sim.aifi.planogram import build_planogram, read_products, shelf_id
from firmware_sim.aifi.store_meta import StoreMeta, read_store_meta

XY = tuple[float, float]
Rect = tuple[float, float, float, float]  # xmin, ymin, xmax, ymax

STAND_OFFSET_M = 0.5
ENTRANCE_GAP_M = 1.0


@dataclass(frozen=True)
class AifiStore:
    """The store's planogram plus the floor geometry the replay needs.

    Plate numbers are storeedge's (0-based: plate 0 is AiFi plate 1).
    """

    planogram: Planogram
    plate_counts: dict[str, int]  # shelf id -> physical plates (including empty ones)
    entrance_xy: XY
    gondola_rects: dict[int, Rect]  # floor footprint of each gondola with its shelves
    shelf_gondola: dict[str, int]
    plate_positions: dict[tuple[str, int], XY]
    plate_heights: dict[tuple[str, int], float]
    stand_positions: dict[tuple[str, int], XY]
    notes: tuple[str, ...] = ()

    @property
    def shelf_ids(self) -> tuple[str, ...]:
        return tuple(self.plate_counts)

    def plate_xy(self, shelf_id: str, plate: int) -> XY:
        """World floor position of a plate centre, metres."""
        return self.plate_positions[(shelf_id, plate)]

    def plate_z(self, shelf_id: str, plate: int) -> float:
        """Height of the plate's surface above the floor, metres."""
        return self.plate_heights[(shelf_id, plate)]

    def stand_xy(self, shelf_id: str, plate: int) -> XY:
        """Where a shopper stands to reach ``plate`` of ``shelf_id``."""
        return self.stand_positions[(shelf_id, plate)]


def _xy(v: Vec) -> XY:
    return (round(float(v[0]), 4), round(float(v[1]), 4))


def _front(gondola: Box, shelf: Box) -> Vec:
    direction = (shelf.centre() - gondola.centre())[:2]
    norm = float(np.linalg.norm(direction))
    if norm < 1e-9:
        raise ValueError("cannot tell the front of a shelf centred on its gondola")
    result: Vec = direction / norm
    return result


def _geometry(
    meta: StoreMeta,
) -> tuple[
    dict[str, int],
    dict[tuple[str, int], XY],
    dict[tuple[str, int], XY],
    dict[str, int],
    dict[tuple[str, int], float],
]:
    plate_counts: dict[str, int] = {}
    plate_z: dict[tuple[str, int], float] = {}
    plate_xy: dict[tuple[str, int], XY] = {}
    stand_xy: dict[tuple[str, int], XY] = {}
    shelf_gondola: dict[str, int] = {}
    for key in sorted(meta.shelves):
        gondola, index = key
        sid = shelf_id(gondola, index)
        shelf = meta.shelves[key]
        indices = meta.plate_indices(key)
        if indices != list(range(1, len(indices) + 1)):
            raise ValueError(f"shelf {sid}: plate indices {indices} are not 1..n")
        plate_counts[sid] = len(indices)
        shelf_gondola[sid] = gondola
        front = _front(meta.gondolas[gondola], shelf)
        corners = shelf.corners()[:, :2]
        for aifi_plate in indices:
            centre3 = meta.plates[(gondola, index, aifi_plate)].centre()
            plate_z[(sid, aifi_plate - 1)] = round(float(centre3[2]), 4)
            centre = centre3[:2]
            reach = float(np.max((corners - centre) @ front))
            plate_xy[(sid, aifi_plate - 1)] = _xy(centre)
            stand_xy[(sid, aifi_plate - 1)] = _xy(centre + front * (reach + STAND_OFFSET_M))
    return plate_counts, plate_xy, stand_xy, shelf_gondola, plate_z


def _gondola_rects(meta: StoreMeta) -> dict[int, Rect]:
    rects: dict[int, Rect] = {}
    for gid, box in sorted(meta.gondolas.items()):
        parts = [box.floor_rect()] + [
            s.floor_rect() for (g, _), s in meta.shelves.items() if g == gid
        ]
        rects[gid] = union_rect(parts)
    return rects


def load_store(store_dir: Path) -> AifiStore:
    """Load the AiFi store folder (``store_meta/*.json`` and ``planogram.json``)."""
    meta = read_store_meta(store_dir / "store_meta")
    plate_counts, plate_xy, stand_xy, shelf_gondola, plate_z = _geometry(meta)
    rects = _gondola_rects(meta)
    built = build_planogram(
        read_products(store_dir / "planogram.json"), plate_counts, plate_xy, plate_z
    )
    xmin, ymin, xmax, _ = union_rect(list(rects.values()))
    entrance = (round((xmin + xmax) / 2.0, 4), round(ymin - ENTRANCE_GAP_M, 4))
    return AifiStore(
        planogram=built.planogram,
        plate_counts=plate_counts,
        entrance_xy=entrance,
        gondola_rects=rects,
        shelf_gondola=shelf_gondola,
        plate_positions=plate_xy,
        plate_heights=plate_z,
        stand_positions=stand_xy,
        notes=built.notes,
    )
