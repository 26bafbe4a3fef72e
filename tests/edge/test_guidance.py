"""Guidance: where products are, walking distances around the shelves, and the order of
a shopping list's walk (exact for short lists, nearest neighbour + 2-opt for long)."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from devices.layout import load_planogram
from edge.config import GuidanceConfig, default_config_dir
from edge.shoppers import guidance
from edge.shoppers.guidance import (
    FloorPlan,
    aifi_floor_plan,
    nearest_neighbour_order,
    plan_order,
    route_length,
    two_opt,
)
from firmware_sim.aifi.dataset import find_dataset

#: The demo planogram: shelf-1/2/3, four plates each.
WATER, PASTA, COFFEE, JUICE = "4000417025005", "8076809513753", "4337256383592", "4001724819400"


@pytest.fixture(scope="module")
def demo_plan() -> FloorPlan:
    planogram = load_planogram(default_config_dir() / "planogram.yaml")
    return FloorPlan(planogram, GuidanceConfig(exit=(4.0, 7.0)))


def _crosses_a_shelf(plan: FloorPlan, path: tuple[tuple[float, float], ...]) -> bool:
    for a, b in itertools.pairwise(path):
        for k in range(21):
            x, y = a[0] + (b[0] - a[0]) * k / 20, a[1] + (b[1] - a[1]) * k / 20
            if not plan.walkable((x, y)):
                return True
    return False


def test_default_layout_puts_every_plate_and_its_stand_point(demo_plan: FloorPlan) -> None:
    [pasta] = demo_plan.locate(PASTA)  # shelf-2 plate 0
    assert (pasta.shelf, pasta.plate, pasta.gondola, pasta.level) == ("shelf-2", 0, "shelf-2", None)
    assert (pasta.x, pasta.y) == (1.0, 3.5)
    assert pasta.stand == (1.0, 3.05)  # in front of the shelf, towards the entrance
    assert pasta.side == "south"
    assert len(demo_plan.spots) == 12


def test_walking_distance_goes_around_shelves(demo_plan: FloorPlan) -> None:
    [coffee] = demo_plan.locate(COFFEE)  # shelf-3: behind shelves 1 and 2
    straight = math.dist(demo_plan.entrance, coffee.stand)
    walked = demo_plan.distance(demo_plan.entrance, coffee.stand)
    assert walked > straight
    assert walked == pytest.approx(demo_plan.distance(coffee.stand, demo_plan.entrance))
    path = demo_plan.path(demo_plan.entrance, coffee.stand)
    assert not _crosses_a_shelf(demo_plan, path)
    steps = demo_plan.directions(path, coffee)
    assert steps[0].startswith("walk ")
    assert "plate 2" in steps[-1]


def test_a_shopping_list_is_walked_shelf_by_shelf(demo_plan: FloorPlan) -> None:
    # given in the worst order: far shelf first
    items = [JUICE, WATER, PASTA]  # shelf-3, shelf-1, shelf-2
    stops = [demo_plan.locate(b)[0].stand for b in items]
    walk = demo_plan.walk(stops)
    assert [items[i] for i in walk.order] == [WATER, PASTA, JUICE]
    assert len(walk.legs) == 4  # entrance -> 3 stops -> exit
    assert walk.metres == pytest.approx(sum(leg.metres for leg in walk.legs))
    given = demo_plan.walk(stops[:1]).metres  # a sanity bound: more stops, longer walk
    assert walk.metres > given


def test_short_lists_are_walked_optimally() -> None:
    for seed in range(30):
        rng = random.Random(seed)
        points = [(rng.uniform(0, 10), rng.uniform(0, 10)) for _ in range(8)]
        matrix = [[math.dist(a, b) for b in points] for a in points]
        best = min(route_length(matrix, p) for p in itertools.permutations(range(1, 7)))
        assert route_length(matrix, plan_order(matrix)) == pytest.approx(best)


def test_long_lists_use_nearest_neighbour_then_2opt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guidance, "EXACT_STOPS", 0)
    shorter = 0
    for seed in range(10):
        rng = random.Random(seed)
        points = [(rng.uniform(0, 20), rng.uniform(0, 20)) for _ in range(30)]
        matrix = [[math.dist(a, b) for b in points] for a in points]
        greedy = nearest_neighbour_order(matrix)
        order = plan_order(matrix)
        assert sorted(order) == list(range(1, 29))
        assert route_length(matrix, order) <= route_length(matrix, greedy) + 1e-9
        shorter += route_length(matrix, order) < route_length(matrix, greedy) - 1e-6
        assert two_opt(matrix, order) == order  # no 2-opt move improves it any more
    assert shorter >= 8  # nearest neighbour alone is rarely the best walk


@pytest.mark.skipif(find_dataset() is None, reason="AiFi dataset not found")
def test_the_aifi_store_layout() -> None:
    from firmware_sim.aifi.layout import load_store  # noqa: PLC0415

    dataset = find_dataset()
    assert dataset is not None
    aifi = load_store(dataset)
    plan = aifi_floor_plan(aifi)
    assert plan.entrance == aifi.entrance_xy
    for key, spot in plan.spots.items():
        assert spot.stand == aifi.stand_xy(*key)  # the layout's own stand points
        assert spot.gondola == str(aifi.shelf_gondola[key[0]])
    barcodes = sorted({p.barcode for p in aifi.planogram.products if plan.locate(p.barcode)})
    stops = [plan.locate(b)[0].stand for b in barcodes[:8]]
    walk = plan.walk(stops)
    assert sorted(walk.order) == list(range(len(stops)))
    assert all(not _crosses_a_shelf(plan, leg.path) for leg in walk.legs)


def test_the_shortest_path_cache_keeps_only_the_latest_starts() -> None:
    planogram = load_planogram(default_config_dir() / "planogram.yaml")
    cfg = GuidanceConfig(exit=(4.0, 7.0))
    plan = FloorPlan(planogram, cfg)
    bound = guidance.DIJKSTRA_CACHE
    # more distinct walkable start cells than the cache keeps, each a grid cell's centre
    starts = [plan._grid.xy(c) for c in sorted(plan._reachable)][: bound + 20]
    assert len({plan._cell(xy) for xy in starts}) == len(starts) > bound
    [coffee] = plan.locate(COFFEE)
    goal = coffee.stand

    def routes(floor: FloorPlan, points: list[tuple[float, float]]) -> list[object]:
        out: list[object] = []
        for xy in points:
            out.append((floor.distance(xy, goal), floor.path(xy, goal)))
            assert len(floor._dijkstra_cache) <= bound
        return out

    first = routes(plan, starts)
    assert len(plan._dijkstra_cache) == bound
    # the earliest starts were evicted; the latest are kept
    assert plan._cell(starts[0]) not in plan._dijkstra_cache
    assert plan._cell(starts[-1]) in plan._dijkstra_cache
    # asked again (recomputed after eviction) they give what a fresh plan gives
    fresh = FloorPlan(planogram, cfg)
    assert routes(plan, starts) == first == routes(fresh, starts)
    # least recently used goes first: a start used again outlives an older one
    kept = list(plan._dijkstra_cache)
    assert plan._cell(goal) not in kept
    plan.distance(starts[-bound], goal)  # the oldest kept start, now the latest
    plan.distance(goal, starts[0])  # a new start (the goal's cell) evicts the next oldest
    assert plan._cell(starts[-bound]) in plan._dijkstra_cache
    assert kept[1] not in plan._dijkstra_cache
    assert len(plan._dijkstra_cache) == bound
