"""A text map of the store floor, to eyeball the geometry (no plotting library needed).

``#`` gondola footprint, ``.`` plate centre, ``o`` stand point, ``E`` entrance.
North (+y) is up.
"""

from __future__ import annotations

from firmware_sim.aifi.layout import AifiStore

CELL_M = 0.1


def render(store: AifiStore, margin_m: float = 0.5) -> str:
    xs = [r[0] for r in store.gondola_rects.values()] + [r[2] for r in store.gondola_rects.values()]
    ys = [r[1] for r in store.gondola_rects.values()] + [r[3] for r in store.gondola_rects.values()]
    xs += [store.entrance_xy[0]] + [p[0] for p in store.stand_positions.values()]
    ys += [store.entrance_xy[1]] + [p[1] for p in store.stand_positions.values()]
    x0, y0 = min(xs) - margin_m, min(ys) - margin_m
    width = int((max(xs) + margin_m - x0) / CELL_M) + 1
    height = int((max(ys) + margin_m - y0) / CELL_M) + 1
    grid = [[" "] * width for _ in range(height)]

    def put(x: float, y: float, char: str) -> None:
        col, row = int((x - x0) / CELL_M), height - 1 - int((y - y0) / CELL_M)
        if 0 <= row < height and 0 <= col < width:
            grid[row][col] = char

    for xmin, ymin, xmax, ymax in store.gondola_rects.values():
        for col in range(int((xmin - x0) / CELL_M), int((xmax - x0) / CELL_M) + 1):
            for row in range(int((ymin - y0) / CELL_M), int((ymax - y0) / CELL_M) + 1):
                put(x0 + col * CELL_M, y0 + row * CELL_M, "#")
    for x, y in store.plate_positions.values():
        put(x, y, ".")
    for x, y in store.stand_positions.values():
        put(x, y, "o")
    put(*store.entrance_xy, "E")
    legend = f"x {x0:.2f}..{x0 + width * CELL_M:.2f} m, y {y0:.2f}..{y0 + height * CELL_M:.2f} m"
    return "\n".join(["".join(r).rstrip() for r in grid] + [legend])
