"""The AiFi ground truth as storeedge cases."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from firmware_sim.aifi.cases import LEAD_IN_MS, load_cases, load_cases_report
from firmware_sim.aifi.dataset import find_dataset
from firmware_sim.aifi.times import parse_time
from firmware_sim.scenario import Case

DATASET = find_dataset()
needs_data = pytest.mark.skipif(DATASET is None, reason="AiFi dataset not found")


@pytest.fixture(scope="module")
def cases() -> dict[str, Case]:
    assert DATASET is not None
    return {c.name: c for c in load_cases(DATASET / "ground_truth" / "dev.json")}


# --------------------------------------------------------------------------- times


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-11-07_02-42-40", datetime(2019, 11, 7, 2, 42, 40)),
        ("11_07_2019_03:05:53", datetime(2019, 11, 7, 3, 5, 53)),
        ("1:52 + 2019-11-07_02-41-19", datetime(2019, 11, 7, 2, 43, 11)),
        ("10:03 + 2019-11-07_02-41-19", datetime(2019, 11, 7, 2, 51, 22)),
        ("00:04 + 2020-04-20_07-45-57", datetime(2020, 4, 20, 7, 46, 1)),
    ],
)
def test_time_formats(text: str, expected: datetime) -> None:
    assert parse_time(text).at == expected


@pytest.mark.parametrize("text", [" + ", "", "2019/11/07 02:42:40", "1:75 + 2019-11-07_02-41-19"])
def test_unknown_time_format(text: str) -> None:
    with pytest.raises(ValueError, match="unknown time format"):
        parse_time(text)


def _event(time: str, products: list[str], putback: int = 0, target: str = "abcd") -> Any:
    return {
        "eventID": 1,
        "observation": {
            "position": {"gondola": 2, "shelf": 3, "plates": [1, 2]},
            "products": [{"id": p, "name": p, "weight": 1.0, "price": 1} for p in products],
            "time": time,
            "target_id": target,
        },
        "putback": putback,
    }


def _write(tmp_path: Path, lists: list[Any]) -> Path:
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"lists": lists}))
    return path


def test_unknown_time_names_the_case(tmp_path: Path) -> None:
    path = _write(tmp_path, [{"dataset": "case-x", "events": [_event("yesterday", ["111"])]}])
    with pytest.raises(ValueError, match="case case-x event 1"):
        load_cases(path)


def test_event_mapping(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            {
                "dataset": "c1",
                "events": [
                    _event("0:10 + 2020-01-01_10-00-00", ["222"], putback=1),
                    _event("2020-01-01_10-00-05", ["111", "111", "333"]),
                    _event(" + ", [], target="ghost"),
                ],
            },
            {"dataset": "empty", "events": []},
        ],
    )
    report = load_cases_report(path)
    assert report.skipped_events == 1
    first, empty = report.cases
    assert empty == Case(name="empty", shoppers=(), events=())
    assert first.shoppers == ("abcd", "ghost")
    picks = [e for e in first.events if e.kind == "pick"]
    assert {(e.barcode, e.quantity) for e in picks} == {("111", 2), ("333", 1)}
    assert all(e.t_ms == LEAD_IN_MS for e in picks)
    (putback,) = [e for e in first.events if e.kind == "putback"]
    assert putback.t_ms == LEAD_IN_MS + 5000
    assert putback.shelf_id == "g2-s3"
    assert putback.plates == (0, 1)
    assert [e.t_ms for e in first.events] == sorted(e.t_ms for e in first.events)


def test_bad_putback_flag(tmp_path: Path) -> None:
    path = _write(tmp_path, [{"dataset": "c", "events": [_event("2020-01-01_10-00-05", ["1"], 2)]}])
    with pytest.raises(ValueError, match="case c event 1: putback 2"):
        load_cases(path)


# --------------------------------------------------------------------------- dev.json


@needs_data
def test_dev_cases(cases: dict[str, Case]) -> None:
    assert len(cases) == 29
    assert DATASET is not None
    report = load_cases_report(DATASET / "ground_truth" / "dev.json")
    assert report.skipped_events == 3
    assert sum(len(c.events) for c in cases.values()) == 147 - 3
    assert [c.name for c in report.cases][:3] == ["cps-test-3", "cps-test-4", "cps-test-5"]


@needs_data
def test_empty_cases(cases: dict[str, Case]) -> None:
    for name in ("cps-test-3", "TEAM-5-1", "BASELINE-9", "TEAM-99-DAY-2-TEST-1"):
        assert cases[name].events == ()
        assert cases[name].shoppers == ()
    # a shopper whose only event had no products still came in
    assert cases["BASELINE-19"].shoppers == ("",)
    assert cases["BASELINE-19"].events == ()
    assert cases["BASELINE-19"].receipts() == {"": {}}


@needs_data
def test_quantities_and_receipts(cases: dict[str, Case]) -> None:
    double = [e for e in cases["BASELINE-6"].events if e.barcode == "632565000012"]
    assert [(e.kind, e.quantity, e.shelf_id, e.plates) for e in double] == [
        ("pick", 2, "g1-s5", (8,))
    ]
    receipts = cases["cps-test-12"].receipts()
    assert receipts["-8523249213675307221"] == {"083791126074": 2, "888109010102": 2}
    assert cases["cps-test-8"].receipts() == {
        "-1999542005328838173": {"041364002323": 1, "042238380868": 1}
    }


@needs_data
def test_times_of_dev(cases: dict[str, Case]) -> None:
    c5 = cases["cps-test-5"]
    assert [e.t_ms for e in c5.events] == [6000, 9000, 15000]  # 1:52, 1:55, 2:01
    for case in cases.values():
        if case.events:
            assert case.events[0].t_ms == LEAD_IN_MS
            assert case.events[-1].t_ms - LEAD_IN_MS < timedelta(minutes=2).total_seconds() * 1000


@needs_data
def test_recording_start_typo_is_repaired(cases: dict[str, Case]) -> None:
    # "10:03 + 2019-11-07_02-51-29" lies outside the case's range; 02-41-19 is meant
    assert DATASET is not None
    report = load_cases_report(DATASET / "ground_truth" / "dev.json")
    assert any("cps-test-12 event 8" in note for note in report.notes)
    (event,) = [e for e in cases["cps-test-12"].events if e.barcode == "613008744090"]
    assert event.t_ms == LEAD_IN_MS + 31_000  # 02:51:22 - 02:50:51
