"""The simulated shelf label: what it accepts, shows and reports (no broker needed)."""

from __future__ import annotations

import pytest

from devices.protocol import Command
from firmware_sim.esl import REDRAW_COST_PCT, Display, SimEsl


def _esl() -> SimEsl:
    return SimEsl("s", "esl-1", "127.0.0.1", 1)  # never started: commands are handled directly


def _config(**args: object) -> Command:
    return Command(cmd_id="c-1", ts=1, args=args)


def test_a_new_label_is_blank_and_reports_its_settings():
    esl = _esl()
    assert esl.display == Display("", 0, "")
    assert esl.display.text == "(blank)"
    assert esl.settings == {"heartbeat_s": 5.0, "barcode": "", "price_minor": 0, "currency": ""}


def test_config_sets_what_the_label_shows_and_costs_battery():
    esl = _esl()
    ok, detail = esl.handle_command(
        "config", _config(barcode="5449000000996", price_minor=149, currency="EUR")
    )
    assert (ok, detail) == (True, "")
    assert esl.display == Display("5449000000996", 149, "EUR")
    assert esl.display.text == "5449000000996  1.49 EUR"
    assert esl.redraws == 1
    assert esl.battery_pct == pytest.approx(100 - REDRAW_COST_PCT)
    assert esl.heartbeat().battery_pct == pytest.approx(100 - REDRAW_COST_PCT)
    esl.handle_command("config", _config(heartbeat_s=2.0))  # same content: no redraw
    assert esl.redraws == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"price_minor": "1.49"}, "price_minor must be an integer"),
        ({"price_minor": 1.5}, "price_minor must be an integer"),
        ({"price_minor": True}, "price_minor must be an integer"),
        ({"price_minor": -1}, "price_minor must be >= 0"),
        ({"barcode": 42}, "barcode must be text"),
        ({"currency": "EURO"}, "3-letter code"),
        ({"colour": "red"}, "unknown settings ['colour']"),
    ],
)
def test_bad_settings_are_refused_and_change_nothing(args, message):
    esl = _esl()
    ok, detail = esl.handle_command("config", _config(**args))
    assert not ok
    assert message in detail
    assert esl.display == Display("", 0, "")
    assert esl.settings["price_minor"] == 0
