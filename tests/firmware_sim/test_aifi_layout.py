"""The AiFi Nanostore layout and planogram as a storeedge store."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from firmware_sim.aifi.asciimap import render
from firmware_sim.aifi.dataset import find_dataset
from firmware_sim.aifi.geometry import rodrigues
from firmware_sim.aifi.layout import AifiStore, load_store

DATASET = find_dataset()
pytestmark = pytest.mark.skipif(DATASET is None, reason="AiFi dataset not found")


@pytest.fixture(scope="module")
def store() -> AifiStore:
    assert DATASET is not None
    return load_store(DATASET)


def _inside(xy: tuple[float, float], rect: tuple[float, float, float, float]) -> bool:
    return rect[0] <= xy[0] <= rect[2] and rect[1] <= xy[1] <= rect[3]


def test_counts(store: AifiStore) -> None:
    assert len(store.gondola_rects) == 5
    assert len(store.shelf_ids) == 30
    assert sum(store.plate_counts.values()) == 306
    assert store.plate_counts["g1-s1"] == 12
    assert store.plate_counts["g2-s5"] == 9
    assert store.shelf_ids[0] == "g1-s1"
    assert len(store.planogram.products) == 84
    # every shelf is a device of the planogram (the gateway must know it), with all its
    # plates; three carry no product at all
    assert {s.device_id for s in store.planogram.shelves} == set(store.shelf_ids)
    assert all(s.plate_count == store.plate_counts[s.device_id] for s in store.planogram.shelves)
    empty = {s.device_id for s in store.planogram.shelves if not s.plates}
    assert empty == {"g2-s2", "g5-s1", "g5-s6"}
    assert len(store.planogram.facings) > 84


def test_products(store: AifiStore) -> None:
    zero = [p for p in store.planogram.products if p.unit_weight_g == 0]
    assert [p.barcode for p in zero] == ["UNKOWN"]
    water = store.planogram.product("041508922487")
    assert water.unit_weight_g == 1064.0
    assert water.weight_sd_g == pytest.approx(21.28)
    assert water.price_minor == 100
    assert all(p.weight_sd_g >= 2.0 for p in store.planogram.products)
    assert store.planogram.currency == "USD"


def test_plates_follow_the_planogram(store: AifiStore) -> None:
    # ACQUA PANNA faces g1-s6 AiFi plates 6 and 9 -> storeedge plates 5 and 8
    shelf = store.planogram.shelf("g1-s6")
    plates = {p.plate: p for p in shelf.plates}
    assert "041508922487" in plates[5].barcodes
    assert "041508922487" in plates[8].barcodes
    assert all(p.stock > 0 for p in shelf.plates)
    for s in store.planogram.shelves:
        assert s.plate_count <= store.plate_counts[s.device_id]
        for p in s.plates:
            assert (p.x, p.y) == store.plate_xy(s.device_id, p.plate)
    shared = [p for s in store.planogram.shelves for p in s.plates if p.also]
    assert shared, "some plates carry several products"


def test_rotation_of_gondola_5() -> None:
    r = rodrigues(np.array([0.0, 0.0, -1.5708]))
    assert r[0, 1] == pytest.approx(1.0, abs=1e-4)  # local +y -> world +x
    assert r[1, 0] == pytest.approx(-1.0, abs=1e-4)  # local +x -> world -y


def test_plate_positions(store: AifiStore) -> None:
    for sid in store.shelf_ids:
        rect = store.gondola_rects[store.shelf_gondola[sid]]
        xs = []
        for plate in range(store.plate_counts[sid]):
            xy = store.plate_xy(sid, plate)
            assert _inside(xy, rect), (sid, plate, xy, rect)
            xs.append(xy)
        # plates of one shelf lie on a line, 10.16 cm apart
        for a, b in pairwise(xs):
            gap = ((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2) ** 0.5
            assert gap == pytest.approx(0.1016, abs=1e-3)
    # gondolas 1-4 run along x at the back wall, gondola 5 is turned along y at the east end
    assert store.plate_xy("g1-s1", 0)[0] < store.plate_xy("g1-s1", 11)[0]
    assert store.plate_xy("g5-s3", 0)[1] > store.plate_xy("g5-s3", 8)[1]
    assert store.plate_xy("g5-s3", 0)[0] > store.plate_xy("g4-s1", 8)[0]


def test_stand_points(store: AifiStore) -> None:
    for sid in store.shelf_ids:
        for plate in range(store.plate_counts[sid]):
            stand = store.stand_xy(sid, plate)
            for rect in store.gondola_rects.values():
                assert not _inside(stand, rect), (sid, plate, stand)
            plate_xy = store.plate_xy(sid, plate)
            dist = ((stand[0] - plate_xy[0]) ** 2 + (stand[1] - plate_xy[1]) ** 2) ** 0.5
            assert dist == pytest.approx(0.2032 + 0.5, abs=1e-3)
    # gondolas 1-4 face -y (the open floor), gondola 5 faces -x (into the store)
    assert store.stand_xy("g2-s3", 0)[1] < store.plate_xy("g2-s3", 0)[1]
    assert store.stand_xy("g5-s3", 0)[0] < store.plate_xy("g5-s3", 0)[0]


def test_entrance(store: AifiStore) -> None:
    ex, ey = store.entrance_xy
    for rect in store.gondola_rects.values():
        assert not _inside(store.entrance_xy, rect)
    assert ey < min(r[1] for r in store.gondola_rects.values())
    for stand in store.stand_positions.values():
        assert 1.5 < ((stand[0] - ex) ** 2 + (stand[1] - ey) ** 2) ** 0.5 < 3.5


def test_ascii_map(store: AifiStore) -> None:
    text = render(store)
    assert text.count("E") == 1
    assert "#" in text
    assert "o" in text


def test_facing_on_a_missing_plate_is_moved(store: AifiStore) -> None:
    assert any("g2-s5 plate 12" in note for note in store.notes)
    plate = {p.plate: p for p in store.planogram.shelf("g2-s5").plates}[8]
    assert "898999010007" in plate.barcodes


def test_load_store_needs_the_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_store(tmp_path)
