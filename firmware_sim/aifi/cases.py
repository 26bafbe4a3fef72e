"""The AiFi ground truth (``ground_truth/dev.json``) as :class:`firmware_sim.scenario.Case`.

* Times: see :mod:`firmware_sim.aifi.times`.  ``t_ms`` = event time - the case's
  first event time + :data:`LEAD_IN_MS`.  Events are sorted by time (stably).
* An offset time whose recording start (after ``+``) puts it outside the case's
  labelled ``range`` while another start used in the same case puts it inside is
  a label typo; the other start is used and a note says so (cps-test-12 event 8).
* ``products`` repeats a product for quantity; identical ids are grouped.  An
  event without products is skipped and counted.
* ``putback`` 1 -> ``putback``, 0 -> ``pick``; ``shelf_id`` = ``g{gondola}-s{shelf}``;
  ``plates`` are 0-based (AiFi plate 1 -> 0).
* ``shoppers``: every ``target_id`` of the case in order of first appearance,
  including ones whose events were all skipped (``""`` in two cases).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from firmware_sim.aifi.planogram import shelf_id
from firmware_sim.aifi.times import LabelTime, parse_range, parse_time, time_of_day
from firmware_sim.scenario import Case, CaseEvent

#: Time before a case's first event, so a shopper can walk in and shelves settle.
LEAD_IN_MS = 6000
#: Slack around a case's labelled range before a time counts as outside it.
RANGE_SLACK = timedelta(seconds=30)


@dataclass(frozen=True)
class CaseLoad:
    cases: list[Case]
    skipped_events: int  # events without products
    notes: tuple[str, ...]


def load_cases(path: Path) -> list[Case]:
    """The labelled cases of an AiFi ground-truth file, in file order (empty ones too)."""
    return load_cases_report(path).cases


def load_cases_report(path: Path) -> CaseLoad:
    with path.open(encoding="utf-8") as fh:
        lists = json.load(fh)["lists"]
    cases: list[Case] = []
    skipped = 0
    notes: list[str] = []
    for raw in lists:
        case, case_skipped, case_notes = _case(raw)
        cases.append(case)
        skipped += case_skipped
        notes.extend(case_notes)
    return CaseLoad(cases, skipped, tuple(notes))


def _kind(name: str, event: dict[str, Any]) -> Literal["pick", "putback"]:
    putback = event.get("putback", 0)
    if putback in (0, 1):
        return "putback" if putback == 1 else "pick"
    raise ValueError(f"case {name} event {event.get('eventID')}: putback {putback!r}")


def _times(
    name: str, events: list[dict[str, Any]], range_text: object
) -> tuple[list[datetime], list[str]]:
    """Absolute time of each event (all must parse), with the base-typo repair applied."""
    parsed: list[LabelTime] = []
    for ev in events:
        try:
            parsed.append(parse_time(str(ev["observation"]["time"])))
        except ValueError as exc:
            raise ValueError(f"case {name} event {ev.get('eventID')}: {exc}") from None
    window = parse_range(range_text)
    if window is None:
        return [p.at for p in parsed], []
    lo, hi = window[0] - RANGE_SLACK, window[1] + RANGE_SLACK
    bases = [b for b, _ in Counter(p.base for p in parsed if p.is_offset).most_common()]
    result: list[datetime] = []
    notes: list[str] = []
    for ev, p in zip(events, parsed, strict=True):
        at = p.at
        if p.is_offset and not lo <= time_of_day(at) <= hi:
            fits = [b for b in bases if lo <= time_of_day(b + p.offset) <= hi]
            if fits:
                at = fits[0] + p.offset
                notes.append(
                    f"case {name} event {ev.get('eventID')}: {p.text!r} is outside the range "
                    f"{range_text!r}; used the case's recording start {fits[0]:%H:%M:%S}"
                )
        result.append(at)
    return result, notes


def _case(raw: dict[str, Any]) -> tuple[Case, int, list[str]]:
    name = str(raw["dataset"])
    shoppers: list[str] = []
    kept: list[dict[str, Any]] = []
    for ev in raw["events"]:
        target = str(ev["observation"].get("target_id") or "")
        if target not in shoppers:
            shoppers.append(target)
        if ev["observation"]["products"]:
            kept.append(ev)
    times, notes = _times(name, kept, raw.get("range"))
    first = min(times, default=datetime.min)
    events: list[CaseEvent] = []
    for ev, at in zip(kept, times, strict=True):
        obs = ev["observation"]
        pos = obs["position"]
        t_ms = round((at - first).total_seconds() * 1000) + LEAD_IN_MS
        counts = Counter(str(p["id"]) for p in obs["products"])
        for barcode, quantity in counts.items():
            events.append(
                CaseEvent(
                    t_ms=t_ms,
                    shopper=str(obs.get("target_id") or ""),
                    kind=_kind(name, ev),
                    barcode=barcode,
                    quantity=quantity,
                    shelf_id=shelf_id(int(pos["gondola"]), int(pos["shelf"])),
                    plates=tuple(int(p) - 1 for p in pos["plates"]),
                )
            )
    events.sort(key=lambda e: e.t_ms)
    skipped = len(raw["events"]) - len(kept)
    return Case(name=name, shoppers=tuple(shoppers), events=tuple(events)), skipped, notes
