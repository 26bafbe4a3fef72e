"""Where things are, and the shortest walk to them.

A ``FloorPlan`` knows every plate's place on the floor (metres): from the
planogram where its plates carry x/y (the AiFi Nanostore's do), from the
configuration's shelf positions, or a default layout (shelves in a row of
aisles).  Shelves are obstacles on a walkable grid; a shopper reaches a plate
from its *stand point*, the nearest walkable cell in front of it.  Walking
distances are shortest paths on that grid (8-connected, Dijkstra).

A shopping list becomes a walk: entrance -> every stop -> exit, ordered by
nearest neighbour and then improved by 2-opt over the grid distances.
"""

from __future__ import annotations

import heapq
import itertools
import math
import re
import threading
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from devices.layout import Planogram
from edge.config import GuidanceConfig

if TYPE_CHECKING:
    from firmware_sim.aifi.layout import AifiStore

XY = tuple[float, float]
Rect = tuple[float, float, float, float]  # xmin, ymin, xmax, ymax
Cell = tuple[int, int]

#: Half the depth of a shelf (from its plates' centre line), metres.
SHELF_HALF_DEPTH_M = 0.25
#: Free floor kept around the store's furniture on the grid, metres.
GRID_MARGIN_M = 1.5
#: Start cells whose shortest-path grids a ``FloorPlan`` keeps (least recently used go).
DIJKSTRA_CACHE = 64
_AIFI_SHELF = re.compile(r"^g(\d+)-s(\d+)$")
_HEADINGS = (
    "east",
    "north-east",
    "north",
    "north-west",
    "west",
    "south-west",
    "south",
    "south-east",
)


@dataclass(frozen=True)
class Spot:
    """One plate: where it is, and where a shopper stands to reach it."""

    shelf: str
    plate: int
    gondola: str
    level: int | None  # shelf level on its gondola, where the shelf id says it
    x: float
    y: float
    z: float | None
    stand: XY
    side: str  # the way the shelf faces: the shopper stands on that side of it

    def as_json(self) -> dict[str, object]:
        return {
            "shelf": self.shelf,
            "plate": self.plate,
            "gondola": self.gondola,
            "level": self.level,
            "x": round(self.x, 2),
            "y": round(self.y, 2),
            "z": None if self.z is None else round(self.z, 2),
            "stand": [round(self.stand[0], 2), round(self.stand[1], 2)],
            "side": self.side,
        }


@dataclass(frozen=True)
class Leg:
    to: int  # index into the stops (len(stops): the exit)
    metres: float
    path: tuple[XY, ...]  # waypoints where the direction changes, start and end included


@dataclass(frozen=True)
class Walk:
    order: tuple[int, ...]  # indices of the stops in walking order
    legs: tuple[Leg, ...]  # entrance -> first stop, ..., last stop -> exit
    metres: float


@dataclass
class _Grid:
    x0: float
    y0: float
    cell: float
    width: int
    height: int
    blocked: set[Cell] = field(default_factory=set)

    def cell_of(self, xy: XY) -> Cell:
        i = round((xy[0] - self.x0) / self.cell)
        j = round((xy[1] - self.y0) / self.cell)
        return (min(max(i, 0), self.width - 1), min(max(j, 0), self.height - 1))

    def xy(self, c: Cell) -> XY:
        return (self.x0 + c[0] * self.cell, self.y0 + c[1] * self.cell)

    def free(self, c: Cell) -> bool:
        return 0 <= c[0] < self.width and 0 <= c[1] < self.height and c not in self.blocked

    def neighbours(self, c: Cell) -> Iterable[tuple[Cell, float]]:
        i, j = c
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                if di == dj == 0:
                    continue
                n = (i + di, j + dj)
                if not self.free(n):
                    continue
                if di and dj and not (self.free((i + di, j)) and self.free((i, j + dj))):
                    continue  # no cutting corners of a shelf
                yield n, self.cell * (math.sqrt(2) if di and dj else 1.0)


def _heading(dx: float, dy: float) -> str:
    angle = math.degrees(math.atan2(dy, dx)) % 360
    return _HEADINGS[round(angle / 45) % 8]


def shelf_names(shelf: str) -> tuple[str, int | None]:
    """(gondola, level) of a shelf id: ``g3-s2`` is gondola 3, level 2; others name both."""
    match = _AIFI_SHELF.match(shelf)
    if match:
        return match.group(1), int(match.group(2))
    return shelf, None


class FloorPlan:
    def __init__(
        self,
        planogram: Planogram,
        cfg: GuidanceConfig,
        *,
        entrance: XY | None = None,
        exit_xy: XY | None = None,
        obstacles: Sequence[Rect] | None = None,
        stands: dict[tuple[str, int], XY] | None = None,
    ) -> None:
        """``obstacles`` (floor rectangles) and ``stands`` override what is derived
        from the plates (the AiFi layout knows its gondolas and stand points)."""
        self.cfg = cfg
        self.entrance: XY = entrance or cfg.entrance
        self.exit: XY = exit_xy or cfg.exit or self.entrance
        self._default_stand: dict[tuple[str, int], XY] = {}
        places = self._places(planogram, cfg)
        rects = list(obstacles) if obstacles is not None else self._shelf_rects(places)
        points = [xy for xy, _ in places.values()] + [self.entrance, self.exit]
        points += [(r[0], r[1]) for r in rects] + [(r[2], r[3]) for r in rects]
        x0 = min(p[0] for p in points) - GRID_MARGIN_M
        y0 = min(p[1] for p in points) - GRID_MARGIN_M
        width = math.ceil((max(p[0] for p in points) + GRID_MARGIN_M - x0) / cfg.cell_m) + 1
        height = math.ceil((max(p[1] for p in points) + GRID_MARGIN_M - y0) / cfg.cell_m) + 1
        self._grid = _Grid(x0, y0, cfg.cell_m, width, height)
        for rect in rects:
            self._block(rect)
        self._start = self._nearest_free(self._grid.cell_of(self.entrance), None)
        self._reachable = self._flood(self._start)
        self.spots: dict[tuple[str, int], Spot] = {}
        for key, (xy, z) in places.items():
            wanted = (stands or {}).get(key) or self._default_stand.get(key)
            cell = self._nearest_free(self._grid.cell_of(wanted or xy), self._reachable)
            on_floor = wanted is not None and self._grid.cell_of(wanted) == cell
            stand = wanted if wanted is not None and on_floor else self._grid.xy(cell)
            gondola, level = shelf_names(key[0])
            side = _heading(stand[0] - xy[0], stand[1] - xy[1])
            self.spots[key] = Spot(key[0], key[1], gondola, level, xy[0], xy[1], z, stand, side)
        self._by_barcode: dict[str, list[Spot]] = {}
        for shelf in planogram.shelves:
            for plate in shelf.plates:
                for barcode in plate.barcodes:
                    spot = self.spots[(shelf.device_id, plate.plate)]
                    self._by_barcode.setdefault(barcode, []).append(spot)
        #: Distances and predecessors per start cell, least recently used first.
        self._dijkstra_cache: OrderedDict[Cell, tuple[dict[Cell, float], dict[Cell, Cell]]] = (
            OrderedDict()
        )
        self._dijkstra_lock = threading.Lock()  # the API's threads share one plan

    # ------------------------------------------------------------------ layout

    def _places(
        self, planogram: Planogram, cfg: GuidanceConfig
    ) -> dict[tuple[str, int], tuple[XY, float | None]]:
        places: dict[tuple[str, int], tuple[XY, float | None]] = {}
        for index, shelf in enumerate(planogram.shelves):
            count = max(shelf.plate_count, 1)
            line = cfg.shelves.get(shelf.device_id)
            for plate in shelf.plates:
                key = (shelf.device_id, plate.plate)
                if plate.x is not None and plate.y is not None:
                    places[key] = ((plate.x, plate.y), plate.z)
                    continue
                if line is not None:
                    share = plate.plate / (count - 1) if count > 1 else 0.0
                    xy = (
                        line[0] + share * (line[2] - line[0]),
                        line[1] + share * (line[3] - line[1]),
                    )
                else:  # shelf n along y, its plates along x, facing the entrance (-y)
                    xy = (
                        cfg.shelf_origin[0] + plate.plate * cfg.plate_spacing_m,
                        cfg.shelf_origin[1] + index * cfg.aisle_spacing_m,
                    )
                    self._default_stand[key] = (xy[0], xy[1] - cfg.clearance_m)
                places[key] = (xy, plate.z)
        return places

    @staticmethod
    def _shelf_rects(places: dict[tuple[str, int], tuple[XY, float | None]]) -> list[Rect]:
        by_shelf: dict[str, list[XY]] = {}
        for (shelf, _), (xy, _) in places.items():
            by_shelf.setdefault(shelf, []).append(xy)
        rects = []
        for xys in by_shelf.values():
            xs, ys = [p[0] for p in xys], [p[1] for p in xys]
            pad = SHELF_HALF_DEPTH_M
            rects.append((min(xs) - pad, min(ys) - pad, max(xs) + pad, max(ys) + pad))
        return rects

    def _block(self, rect: Rect) -> None:
        g = self._grid
        i0, j0 = g.cell_of((rect[0], rect[1]))
        i1, j1 = g.cell_of((rect[2], rect[3]))
        for i in range(i0, i1 + 1):
            for j in range(j0, j1 + 1):
                g.blocked.add((i, j))

    def _nearest_free(self, cell: Cell, allowed: set[Cell] | None) -> Cell:
        """The walkable cell nearest ``cell`` (breadth-first over the whole grid)."""
        g = self._grid
        seen = {cell}
        queue = deque([cell])
        while queue:
            c = queue.popleft()
            if g.free(c) and (allowed is None or c in allowed):
                return c
            for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                n = (c[0] + di, c[1] + dj)
                if 0 <= n[0] < g.width and 0 <= n[1] < g.height and n not in seen:
                    seen.add(n)
                    queue.append(n)
        raise ValueError("the floor plan has no walkable cell")

    def _flood(self, start: Cell) -> set[Cell]:
        seen = {start}
        queue = deque([start])
        while queue:
            c = queue.popleft()
            for n, _ in self._grid.neighbours(c):
                if n not in seen:
                    seen.add(n)
                    queue.append(n)
        return seen

    def walkable(self, xy: XY) -> bool:
        """Is this floor point free of shelves (on the grid)?"""
        return self._grid.free(self._grid.cell_of(xy))

    # ------------------------------------------------------------------ lookups

    def locate(self, barcode: str) -> list[Spot]:
        """Every plate holding ``barcode``, nearest to the entrance first."""
        spots = self._by_barcode.get(barcode, [])
        return sorted(spots, key=lambda s: (self.distance(self.entrance, s.stand), s.shelf))

    def nearest_spot(self, barcode: str, origin: XY | None = None) -> Spot | None:
        spots = self._by_barcode.get(barcode, [])
        here = origin or self.entrance
        return min(spots, key=lambda s: (self.distance(here, s.stand), s.shelf), default=None)

    # ------------------------------------------------------------------ distances

    def _cell(self, xy: XY) -> Cell:
        return self._nearest_free(self._grid.cell_of(xy), self._reachable)

    def _dijkstra(self, source: Cell) -> tuple[dict[Cell, float], dict[Cell, Cell]]:
        """Distances from ``source`` to every reachable cell and each one's predecessor;
        the last ``DIJKSTRA_CACHE`` sources asked for are kept."""
        with self._dijkstra_lock:
            cached = self._dijkstra_cache.get(source)
            if cached is not None:
                self._dijkstra_cache.move_to_end(source)
                return cached
        dist = {source: 0.0}
        prev: dict[Cell, Cell] = {}
        heap = [(0.0, source)]
        while heap:
            d, c = heapq.heappop(heap)
            if d > dist[c]:
                continue
            for n, step in self._grid.neighbours(c):
                nd = d + step
                if nd < dist.get(n, math.inf):
                    dist[n] = nd
                    prev[n] = c
                    heapq.heappush(heap, (nd, n))
        with self._dijkstra_lock:
            self._dijkstra_cache[source] = (dist, prev)
            self._dijkstra_cache.move_to_end(source)
            while len(self._dijkstra_cache) > DIJKSTRA_CACHE:
                self._dijkstra_cache.popitem(last=False)
        return dist, prev

    def distance(self, a: XY, b: XY) -> float:
        """Walking distance between two floor points, metres (around the shelves)."""
        dist, _ = self._dijkstra(self._cell(a))
        return dist.get(self._cell(b), math.inf)

    def path(self, a: XY, b: XY) -> tuple[XY, ...]:
        """Waypoints from ``a`` to ``b``: the points where the walk turns."""
        start, goal = self._cell(a), self._cell(b)
        _, prev = self._dijkstra(start)
        cells = [goal]
        while cells[-1] != start:
            cells.append(prev[cells[-1]])
        cells.reverse()
        turns = [cells[0]]
        for before, here, after in zip(cells, cells[1:], cells[2:], strict=False):
            step_in = (here[0] - before[0], here[1] - before[1])
            if step_in != (after[0] - here[0], after[1] - here[1]):
                turns.append(here)
        if len(cells) > 1:
            turns.append(cells[-1])
        return tuple(self._grid.xy(c) for c in turns)

    # ------------------------------------------------------------------ walks

    def walk(self, stops: Sequence[XY], *, start: XY | None = None, end: XY | None = None) -> Walk:
        """The shortest walk found from ``start`` (the entrance) through every stop to
        ``end`` (the exit): nearest neighbour, then 2-opt."""
        begin, finish = start or self.entrance, end or self.exit
        nodes = [begin, *stops, finish]
        n = len(stops)
        matrix = [[self.distance(a, b) for b in nodes] for a in nodes]
        order = plan_order(matrix)
        legs = []
        here = 0
        for nxt in [*order, n + 1]:
            legs.append(Leg(nxt - 1, matrix[here][nxt], self.path(nodes[here], nodes[nxt])))
            here = nxt
        return Walk(tuple(i - 1 for i in order), tuple(legs), sum(leg.metres for leg in legs))

    def directions(self, path: Sequence[XY], spot: Spot | None = None) -> list[str]:
        """Walking directions along a path, in words."""
        steps = []
        for a, b in itertools.pairwise(path):
            metres = math.dist(a, b)
            if metres > 0:
                steps.append(f"walk {metres:.1f} m {_heading(b[0] - a[0], b[1] - a[1])}")
        if spot is not None:
            where = f"gondola {spot.gondola}" + (
                f", shelf {spot.level}" if spot.level is not None else ""
            )
            height = f" at {spot.z:.1f} m" if spot.z is not None else ""
            steps.append(
                f"{where}, plate {spot.plate}{height}: the shelf faces {spot.side}, in front of you"
            )
        return steps or ["you are there"]


def aifi_floor_plan(aifi: AifiStore, cfg: GuidanceConfig | None = None) -> FloorPlan:
    """The AiFi Nanostore's floor: its gondolas, stand points and entrance."""
    return FloorPlan(
        aifi.planogram,
        cfg or GuidanceConfig(),
        entrance=aifi.entrance_xy,
        obstacles=list(aifi.gondola_rects.values()),
        stands=dict(aifi.stand_positions),
    )


def route_length(matrix: Sequence[Sequence[float]], order: Sequence[int]) -> float:
    """Length of 0 -> order... -> last node of ``matrix``."""
    path = [0, *order, len(matrix) - 1]
    return sum(matrix[a][b] for a, b in itertools.pairwise(path))


#: Up to this many stops the walk is exact (Held-Karp); above, nearest neighbour + 2-opt.
EXACT_STOPS = 9


def plan_order(matrix: Sequence[Sequence[float]]) -> list[int]:
    """Visit order of nodes 1..n-2 from node 0 to node n-1.

    A short list is solved exactly (dynamic programming over subsets); a longer one
    starts from nearest neighbour and is improved by 2-opt and by moving single
    stops (or-opt) until neither helps.
    """
    if len(matrix) - 2 <= EXACT_STOPS:
        order = _exact_order(matrix)
    else:
        order = nearest_neighbour_order(matrix)
        improved = True
        while improved:
            order = two_opt(matrix, order)
            order, improved = _relocate_one(matrix, order)
    backwards = order[::-1]  # a round trip is as long either way: start with the nearer
    nearer_first = bool(order) and matrix[0][backwards[0]] < matrix[0][order[0]] - 1e-9
    if nearer_first and route_length(matrix, backwards) <= route_length(matrix, order) + 1e-9:
        return backwards
    return order


def nearest_neighbour_order(matrix: Sequence[Sequence[float]]) -> list[int]:
    order: list[int] = []
    here = 0
    left = set(range(1, len(matrix) - 1))
    while left:
        here = min(left, key=lambda j: (matrix[here][j], j))
        order.append(here)
        left.discard(here)
    return order


def two_opt(matrix: Sequence[Sequence[float]], order: list[int]) -> list[int]:
    """Reverse stretches of the walk while that shortens it (distances are symmetric)."""
    path = [0, *order, len(matrix) - 1]
    improved = True
    while improved:
        improved = False
        for i in range(1, len(path) - 2):
            for j in range(i + 1, len(path) - 1):
                a, b, c, d = path[i - 1], path[i], path[j], path[j + 1]
                if matrix[a][c] + matrix[b][d] < matrix[a][b] + matrix[c][d] - 1e-9:
                    path[i : j + 1] = reversed(path[i : j + 1])
                    improved = True
    return path[1:-1]


def _relocate_one(matrix: Sequence[Sequence[float]], order: list[int]) -> tuple[list[int], bool]:
    best = route_length(matrix, order)
    for i in range(len(order)):
        rest = order[:i] + order[i + 1 :]
        for j in range(len(rest) + 1):
            candidate = [*rest[:j], order[i], *rest[j:]]
            if route_length(matrix, candidate) < best - 1e-9:
                return candidate, True
    return order, False


def _exact_order(matrix: Sequence[Sequence[float]]) -> list[int]:
    stops = len(matrix) - 2
    end = len(matrix) - 1
    if stops <= 0:
        return []
    # cost[(mask, last)]: shortest walk from 0 through the stops in mask, ending at last
    cost: dict[tuple[int, int], tuple[float, int]] = {
        (1 << k, k): (matrix[0][k + 1], -1) for k in range(stops)
    }
    for mask in range(1, 1 << stops):
        for last in range(stops):
            here = cost.get((mask, last))
            if here is None:
                continue
            for nxt in range(stops):
                if mask & (1 << nxt):
                    continue
                key = (mask | (1 << nxt), nxt)
                value = here[0] + matrix[last + 1][nxt + 1]
                if key not in cost or value < cost[key][0] - 1e-12:
                    cost[key] = (value, last)
    full = (1 << stops) - 1
    last = min(range(stops), key=lambda k: (cost[(full, k)][0] + matrix[k + 1][end], k))
    order = []
    mask = full
    while last != -1:
        order.append(last + 1)
        previous = cost[(mask, last)][1]
        mask &= ~(1 << last)
        last = previous
    return order[::-1]
