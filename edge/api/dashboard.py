"""The staff dashboard at ``/``: server-rendered panels, live over server-sent events.

The page itself (``/``) is public and holds no store data: it asks for the
staff (or HQ) token, keeps it in a same-site cookie, and loads every panel from
``/dashboard/panels/{panel}`` with it.  ``/api/v1/stream`` tells the page which
panels changed; ``static/dashboard.js`` (no framework, no CDN) fetches those
again.  Acknowledging an alert and resolving a review item call the JSON API.
"""

from __future__ import annotations

import math
import re
import time
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from devices.layout import Planogram, Shelf
from edge.api.deps import Ctx, public, require_store_reader
from edge.api.staff import Staff, cold_config
from edge.staff.coldchain import unit_status, units_of
from edge.staff.restock import lane_is_low
from edge.store.repo import Store

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=str(HERE / "templates"))

#: The page may load only its own script, style and images.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

page_router = APIRouter(tags=["dashboard"])
router = APIRouter(
    prefix="/dashboard", tags=["dashboard"], dependencies=[Depends(require_store_reader)]
)


class Panel(StrEnum):
    MAP = "map"
    ALERTS = "alerts"
    REVIEW = "review"
    SESSIONS = "sessions"
    RECEIPTS = "receipts"
    DEVICES = "devices"
    COLDCHAIN = "coldchain"
    TRACE = "trace"


# ---------------------------------------------------------------------- formatting


def _clock(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000).astimezone().strftime("%H:%M:%S")


def _money(minor: int | None, currency: str = "") -> str:
    if minor is None:
        return "-"
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{whole}.{cents:02d} {currency}".strip()


templates.env.filters["clock"] = _clock
templates.env.filters["money"] = _money


def _names(planogram: Planogram | None) -> dict[str, str]:
    return {} if planogram is None else {p.barcode: p.name for p in planogram.products}


# ---------------------------------------------------------------------- the page


@page_router.get("/", response_class=HTMLResponse, dependencies=[Depends(public)])
def dashboard(request: Request, ctx: Ctx) -> HTMLResponse:
    """The staff dashboard (HTML). Public: it holds no data until a token is given."""
    response = templates.TemplateResponse(
        request, "dashboard.html", {"store_id": ctx.store_id, "panels": [p.value for p in Panel]}
    )
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@router.get("/panels/{panel}", response_class=HTMLResponse)
def panel(
    request: Request,
    ctx: Ctx,
    staff: Staff,
    panel: Panel,
    shelf: str | None = Query(default=None, max_length=64, description="for the trace"),
) -> HTMLResponse:
    """One panel of the dashboard as an HTML fragment."""
    planogram = staff.planogram if staff is not None else None
    names = _names(planogram)
    data: dict[str, Any] = {"names": names, "running": staff is not None}
    if panel is Panel.MAP:
        lanes = ctx.read(lambda s: s.lanes())
        data["map"] = store_map(planogram, lanes, names) if planogram else None
    elif panel is Panel.ALERTS:
        data.update(ctx.read(_alerts))
    elif panel is Panel.REVIEW:
        data.update(ctx.read(_review))
    elif panel is Panel.SESSIONS:
        data["sessions"] = ctx.read(lambda s: s.sessions(state="open", limit=50))
    elif panel is Panel.RECEIPTS:
        data["receipts"] = ctx.read(lambda s: s.receipts(limit=12))
    elif panel is Panel.DEVICES:
        data["devices"] = ctx.read(lambda s: s.devices())
    elif panel is Panel.COLDCHAIN:
        cfg = cold_config(staff)
        data["units"] = ctx.read(lambda s: [_unit_view(s, cfg, d) for d in units_of(s, cfg)])
    else:
        shelves = [s.device_id for s in planogram.shelves] if planogram else []
        chosen = shelf if shelf in shelves else (shelves[0] if shelves else None)
        points = staff.weight_trace(chosen) if staff is not None and chosen else []
        data.update(shelves=shelves, shelf=chosen, chart=trace_chart(points))
    return templates.TemplateResponse(request, f"panels/{panel.value}.html", data)


# ---------------------------------------------------------------------- panel data


def _alerts(store: Store) -> dict[str, Any]:
    active = store.alerts(state="active", limit=100)
    resolved = store.alerts(state="resolved", limit=5)
    return {"active": active, "resolved": resolved}


def _review(store: Store) -> dict[str, Any]:
    items = store.reviews(status="open", limit=30)
    sessions = store.sessions(limit=20)
    return {"items": items, "sessions": [s["token"] for s in sessions]}


def _unit_view(store: Store, cfg: Any, device_id: str) -> dict[str, Any]:
    unit = unit_status(store, cfg, device_id)
    since = int(time.time() * 1000) - 3_600_000
    readings = store.temperatures(device_id, since_ms=since, limit=2000)
    unit["spark"] = sparkline([(r["ts_ms"], r["celsius"]) for r in readings], unit["max_c"])
    return unit


# ---------------------------------------------------------------------- the store map

_GONDOLA = re.compile(r"^(?P<gondola>.+?)-s(?P<shelf>\d+)$")
#: The map's width; gondolas share it, at least MAP_GONDOLA_MIN_W each.
MAP_W = 1240.0
MAP_GONDOLA_MIN_W = 400.0
MAP_SHELF_H = 44.0
MAP_GAP = 14.0
MAP_TITLE_H = 22.0
MAP_COLUMNS = 3


def gondola_of(device_id: str) -> str:
    """``g3-s2`` is shelf 2 of gondola ``g3`` (the AiFi naming); other shelves share one."""
    match = _GONDOLA.match(device_id)
    return match.group("gondola") if match else "shelves"


def lane_state(lane: dict[str, Any] | None) -> str:
    if lane is None or lane["units"] is None:
        return "unknown"
    at, units, planned = lane["restock_at"], lane["units"], lane["planned_units"]
    if lane_is_low(units, at):
        return "low"
    if planned and units * 2 <= planned:
        return "half"
    return "ok"


def store_map(
    planogram: Planogram, lanes: list[dict[str, Any]], names: dict[str, str]
) -> dict[str, Any]:
    """SVG geometry of the store: gondolas in a grid, shelves stacked, one cell per
    plate coloured by the stock of its lane."""
    by_plate = {(lane["device_id"], p): lane for lane in lanes for p in lane["plates"]}
    groups: dict[str, list[Shelf]] = {}
    for shelf in planogram.shelves:
        groups.setdefault(gondola_of(shelf.device_id), []).append(shelf)
    columns = min(MAP_COLUMNS, len(groups)) or 1
    gondola_w = max(MAP_GONDOLA_MIN_W, (MAP_W - (columns - 1) * MAP_GAP) / columns)
    row_heights: list[float] = []
    for index, shelves in enumerate(groups.values()):
        row = index // columns
        height = MAP_TITLE_H + len(shelves) * MAP_SHELF_H
        if row == len(row_heights):
            row_heights.append(height)
        row_heights[row] = max(row_heights[row], height)
    tops = [sum(row_heights[:r]) + r * MAP_GAP for r in range(len(row_heights))]
    out = []
    for index, (name, shelves) in enumerate(groups.items()):
        x0 = (index % columns) * (gondola_w + MAP_GAP)
        y0 = tops[index // columns]
        rows = []
        for i, shelf in enumerate(shelves):
            y = y0 + MAP_TITLE_H + i * MAP_SHELF_H
            count = shelf.plate_count or 1
            width = (gondola_w - 70) / count
            placed = {p.plate: p for p in shelf.plates}
            cells = []
            for plate in range(count):
                lane = by_plate.get((shelf.device_id, plate))
                product = placed.get(plate)
                barcode = product.barcode if product else None
                label = names.get(barcode, barcode or "") if barcode else ""
                units = "?" if lane is None or lane["units"] is None else str(lane["units"])
                first = lane is not None and lane["plates"][0] == plate
                cells.append(
                    {
                        "x": round(x0 + 70 + plate * width, 1),
                        "w": round(max(1.0, width - 2), 1),
                        "state": lane_state(lane) if product else "empty",
                        "label": label if first or lane is None else "",
                        "units": units if first else "",
                        "title": (
                            f"{shelf.device_id} plate {plate}: {label}"
                            + (
                                f" - {units} of {lane['planned_units']} units"
                                f" (alert at {lane['restock_at']})"
                                if lane is not None
                                else ""
                            )
                        ),
                        "plate": plate,
                    }
                )
            rows.append({"device_id": shelf.device_id, "x": x0, "y": round(y, 1), "cells": cells})
        out.append({"name": name, "x": x0, "y": y0, "shelves": rows})
    width = columns * gondola_w + (columns - 1) * MAP_GAP
    height = (sum(row_heights) + MAP_GAP * max(0, len(row_heights) - 1)) if row_heights else 0
    return {
        "gondolas": out,
        "width": width,
        "height": height,
        "shelf_h": MAP_SHELF_H - 6,
        "chars": max(3, int((gondola_w - 70) / max(1, _max_plates(planogram)) / 8.5)),
    }


def _max_plates(planogram: Planogram) -> int:
    return max((s.plate_count for s in planogram.shelves), default=1)


# ---------------------------------------------------------------------- charts

CHART_W, CHART_H, CHART_PAD = 1280.0, 240.0, 28.0


def _scale(values: list[float], lo_pad: float = 0.05) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    span = hi - lo
    pad = max(span * lo_pad, 5.0)
    return lo - pad, hi + pad


def trace_chart(points: list[tuple[int, tuple[float, ...]]]) -> dict[str, Any] | None:
    """Polylines of each plate's mean weight over the trace window."""
    if len(points) < 2:
        return None
    plates = len(points[-1][1])
    t0, t1 = points[0][0], points[-1][0]
    values = [g for _, grams in points for g in grams if not math.isnan(g)]
    if not values or t1 <= t0:
        return None
    lo, hi = _scale(values)
    inner_w, inner_h = CHART_W - 2 * CHART_PAD, CHART_H - 2 * CHART_PAD

    def xy(ts: int, g: float) -> str:
        x = CHART_PAD + (ts - t0) / (t1 - t0) * inner_w
        y = CHART_PAD + (hi - g) / (hi - lo) * inner_h
        return f"{x:.1f},{y:.1f}"

    lines = []
    for plate in range(plates):
        pts = [
            xy(ts, grams[plate])
            for ts, grams in points
            if plate < len(grams) and not math.isnan(grams[plate])
        ]
        last = points[-1][1][plate] if plate < len(points[-1][1]) else float("nan")
        lines.append({"plate": plate, "points": " ".join(pts), "last": last})
    return {
        "w": CHART_W,
        "h": CHART_H,
        "pad": CHART_PAD,
        "lo": round(lo),
        "hi": round(hi),
        "seconds": round((t1 - t0) / 1000),
        "lines": lines,
    }


def sparkline(readings: list[tuple[int, float]], limit_c: float) -> dict[str, Any] | None:
    """A small chart of the last hour of a unit, with its limit as a line."""
    if len(readings) < 2:
        return None
    w, h, pad = 220.0, 48.0, 4.0
    t0, t1 = readings[0][0], readings[-1][0]
    if t1 <= t0:
        return None
    temps = [c for _, c in readings]
    lo = min(*temps, limit_c) - 1
    hi = max(*temps, limit_c) + 1

    def y(c: float) -> float:
        return pad + (hi - c) / (hi - lo) * (h - 2 * pad)

    pts = " ".join(
        f"{pad + (ts - t0) / (t1 - t0) * (w - 2 * pad):.1f},{y(c):.1f}" for ts, c in readings
    )
    return {"w": w, "h": h, "points": pts, "limit_y": round(y(limit_c), 1)}
