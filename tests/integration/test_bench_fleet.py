"""The fleet benchmark runs end to end (its numbers go to the README, not into asserts)."""

from __future__ import annotations

from edge.bench_fleet import FleetMix, bench_fleet


def test_mix_adds_up_to_the_requested_fleet():
    for total in (20, 100, 500, 1000):
        mix = FleetMix.for_total(total)
        assert mix.total == total
        assert mix.esls > mix.fridges > 0
        assert mix.shelves > 0


def test_a_small_fleet_comes_online_and_nothing_is_dead_lettered(mosquitto):
    result = bench_fleet(devices=20, seconds=2, warmup_s=1, broker=mosquitto.url)
    assert result["devices"] == 20
    assert result["gateway_devices_by_state"] == {"online": 20}
    assert result["dead_letters"] == 0
    assert result["gateway_rss_mb_peak"] > 0
