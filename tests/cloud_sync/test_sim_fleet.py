"""``storeedge sim fleet``: simulated gateways against one HQ; the command group keeps
``storeedge sim --broker ...`` working."""

import json

from typer.testing import CliRunner

from edge.cli import app
from edge.sim_fleet import FleetOptions, run_fleet

runner = CliRunner()


def test_the_fleet_runs_against_postgresql(postgres_url):
    result = run_fleet(
        FleetOptions(stores=2, backlog=200, seconds=0, processes=1, hq_db=postgres_url)
    )
    assert result["hq"] == "postgresql"
    assert result["exactly_once"] is True


def test_sim_is_a_group_that_still_runs_the_store_simulator():
    fleet = runner.invoke(app, ["sim", "fleet", "--help"])
    assert fleet.exit_code == 0
    assert "--stores" in fleet.output
    missing = runner.invoke(app, ["sim"])
    assert missing.exit_code == 2
    assert "--broker URL is required" in missing.output
    # the old form still parses its options (a bad fault is refused before connecting)
    bad = runner.invoke(app, ["sim", "--broker", "mqtt://127.0.0.1:1", "--fault", "dup=1"])
    assert bad.exit_code == 2


def test_a_small_fleet_drains_into_hq_exactly_once():
    out = runner.invoke(
        app,
        ["sim", "fleet", "--stores", "2", "--backlog", "300", "--seconds", "1", "--rate", "40"],
    )
    assert out.exit_code == 0, out.output
    result = json.loads(out.output.strip().splitlines()[-1])
    assert result["type"] == "sim_fleet"
    assert result["errors"] == []
    assert result["hq"] == "sqlite"
    assert result["backlog_events"] == 600
    assert result["events_per_s"] > 0
    assert result["steady_written"] > 0
    assert result["events_at_hq"] == 600 + result["steady_written"]
    assert result["exactly_once"] is True
