"""FaultConfig: YAML and --fault strings, good and bad; merging; unknown targets."""

from __future__ import annotations

import random

import pytest
from typer.testing import CliRunner

from devices.protocol import DeviceType
from edge.cli import app
from firmware_sim.faults import (
    DeviceFaults,
    FaultConfig,
    FaultError,
    FaultInjector,
    load_faults,
    parse_faults,
)
from firmware_sim.gate import SimGate
from firmware_sim.shelf import SimShelf


def test_cli_strings_for_all_devices_one_device_and_a_type():
    cfg = parse_faults(
        [
            "duplicate_rate=0.05",
            "clock_skew_ms=-3000@type:esl",
            "disconnect_every_s=30@shelf-2",
            "disconnect_for_s=3@shelf-2",
            "impersonate=gate-entry@gate-exit",
            "seed=7",
        ]
    )
    assert cfg.seed == 7
    assert cfg.all.duplicate_rate == 0.05
    assert cfg.types[DeviceType.ESL].clock_skew_ms == -3000
    assert cfg.devices["shelf-2"].disconnect_every_s == 30
    assert cfg.devices["shelf-2"].disconnect_for_s == 3
    assert cfg.devices["gate-exit"].impersonate == "gate-entry"
    # the most specific setting wins; unset keys fall through to the wider scope
    shelf2 = cfg.for_device("shelf-2", DeviceType.SHELF)
    assert (shelf2.duplicate_rate, shelf2.disconnect_every_s) == (0.05, 30)
    esl = cfg.for_device("esl-1", DeviceType.ESL)
    assert (esl.clock_skew_ms, esl.duplicate_rate, esl.disconnect_every_s) == (-3000, 0.05, None)
    narrower = parse_faults(["duplicate_rate=0@shelf-2"], cfg)
    assert narrower.for_device("shelf-2", DeviceType.SHELF).duplicate_rate == 0
    assert narrower.for_device("shelf-1", DeviceType.SHELF).duplicate_rate == 0.05


def test_plate_faults_from_cli_strings():
    cfg = parse_faults(["stuck=shelf-1:3", "noisy=shelf-2:0:25", "drift=shelf-1:1:30"])
    got = [(p.device_id, p.plate, p.fault, p.value) for p in cfg.plates]
    assert got == [
        ("shelf-1", 3, "stuck", 0.0),
        ("shelf-2", 0, "noisy", 25.0),
        ("shelf-1", 1, "drift", 30.0),
    ]
    assert "shelf-1 plate 3: stuck 0" in cfg.describe()


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("duplicate_rate", "expected KEY=VALUE"),
        ("=3", "expected KEY=VALUE"),
        ("dupliate_rate=0.1", "did you mean 'duplicate_rate'"),
        ("toaster=1", "unknown fault 'toaster'"),
        ("duplicate_rate=2", "less than or equal to 1"),
        ("duplicate_rate=often", "valid number"),
        ("clock_skew_ms=1.5", "valid integer"),
        ("disconnect_every_s=0", "greater than 0"),
        ("reorder_rate=0.1@type:toaster", "unknown device type 'toaster'"),
        ("reorder_rate=0.1@no way", "is not a device id"),
        ("impersonate=../x@shelf-1", "impersonate"),
        ("stuck=shelf-1", "SHELF:PLATE"),
        ("stuck=shelf-1:x", "plate"),
        ("noisy=shelf-1:2:loud", "value"),
        ("seed=abc", "seed must be an integer"),
    ],
)
def test_bad_cli_strings_are_clear_errors(arg, message):
    with pytest.raises(FaultError, match=message) as err:
        parse_faults([arg])
    assert str(err.value).startswith(f"--fault {arg!r}: ")


def test_yaml_file_and_cli_on_top(tmp_path):
    path = tmp_path / "faults.yaml"
    path.write_text(
        "seed: 3\n"
        "all: {reorder_rate: 0.02}\n"
        "types:\n  gate: {clock_skew_ms: 500}\n"
        "devices:\n  shelf-1: {power_cycle_every_s: 60, power_off_s: 2}\n"
        "plates:\n  - {device_id: shelf-1, plate: 0, fault: saturate}\n"
    )
    cfg = parse_faults(["duplicate_rate=0.1"], load_faults(path))
    assert cfg.seed == 3
    assert cfg.all == DeviceFaults(reorder_rate=0.02, duplicate_rate=0.1)
    assert cfg.for_device("gate-entry", DeviceType.GATE).clock_skew_ms == 500
    assert cfg.devices["shelf-1"].power_off_s == 2
    assert cfg.plates[0].fault == "saturate"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("all: {duplicate_rat: 0.1}\n", "all.duplicate_rat: Extra inputs are not permitted"),
        ("types: {toaster: {}}\n", "types.toaster"),
        ("plates: [{device_id: shelf-1, plate: 0, fault: melted}]\n", "plates.0.fault"),
        ("- 1\n", "top level must be a mapping"),
        ("all: {\n", "not valid YAML"),
    ],
)
def test_bad_yaml_names_file_and_key(tmp_path, text, message):
    path = tmp_path / "f.yaml"
    path.write_text(text)
    with pytest.raises(FaultError, match=message) as err:
        load_faults(path)
    assert str(path) in str(err.value)
    with pytest.raises(FaultError, match="cannot read"):
        load_faults(tmp_path / "missing.yaml")


def _devices():
    shelf = SimShelf("s", "shelf-1", "127.0.0.1", 1, [100.0, 200.0], rng=random.Random(1))
    gate = SimGate("s", "gate-entry", "127.0.0.1", 1, "entry")
    return [shelf, gate]


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (parse_faults(["duplicate_rate=0.1@shelf-9"]), "unknown device 'shelf-9'"),
        (parse_faults(["stuck=shelf-9:0"]), "unknown device 'shelf-9'"),
        (parse_faults(["stuck=gate-entry:0"]), "gate-entry has no load-cell plates"),
        (parse_faults(["stuck=shelf-1:2"]), "plates 0..1, not 2"),
        (parse_faults(["impersonate=shelf-1@shelf-1"]), "cannot impersonate itself"),
    ],
)
def test_faults_for_devices_that_are_not_there_are_refused(cfg, message):
    with pytest.raises(FaultError, match=message):
        FaultInjector(cfg, _devices())


def test_empty_config_and_describe():
    assert FaultConfig().empty
    assert not parse_faults(["seed=1", "reorder_rate=0.1"]).empty
    assert parse_faults(["reorder_rate=0.1@shelf-1"]).describe() == [
        "device shelf-1: reorder_rate=0.1"
    ]


def test_sim_command_reports_bad_faults_before_connecting(tmp_path):
    runner = CliRunner()
    bad = runner.invoke(app, ["sim", "--broker", "mqtt://127.0.0.1:1", "--fault", "dup=1"])
    assert bad.exit_code == 2
    assert "unknown fault 'dup'" in bad.output
    unknown = runner.invoke(
        app, ["sim", "--broker", "mqtt://127.0.0.1:1", "--fault", "stuck=shelf-9:0"]
    )
    assert unknown.exit_code == 2
    assert "unknown device 'shelf-9'" in unknown.output
    path = tmp_path / "f.yaml"
    path.write_text("al: {}\n")
    from_file = runner.invoke(app, ["sim", "--broker", "mqtt://127.0.0.1:1", "--faults", str(path)])
    assert from_file.exit_code == 2
    assert "al: Extra inputs are not permitted" in from_file.output
