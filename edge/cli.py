"""The ``storeedge`` command."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from edge.commands.common import ConfigOption
from edge.commands.common import load as _load
from edge.commands.common import setup_logging as _setup_logging
from edge.commands.devices import devices_app
from edge.commands.firmware import firmware_app
from edge.commands.hq import hq_app
from edge.commands.replay import replay_app
from edge.commands.simfleet import sim_fleet_cmd
from edge.commands.vision import bench_vision_cmd, bench_vision_ties_cmd, vision_app

app = typer.Typer(
    name="storeedge",
    help=(
        "storeedge: the in-store edge gateway for smart retail stores.\n\n"
        "Reads smart shelves and gates over MQTT, turns weight changes into carts and "
        "receipts, keeps its state in SQLite and serves an API.  Start with "
        "'storeedge demo' for a whole simulated store on embedded defaults."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Check and show gateway configuration files.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(replay_app, name="replay")
app.add_typer(devices_app, name="devices")
app.add_typer(firmware_app, name="firmware")
app.add_typer(hq_app, name="hq")
bench_app = typer.Typer(
    help="Benchmarks (numbers for the README, not tests).", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")
app.add_typer(vision_app, name="vision")
bench_app.command("vision")(bench_vision_cmd)
bench_app.command("vision-ties")(bench_vision_ties_cmd)


@config_app.command("check")
def config_check(
    file: Annotated[Path, typer.Argument(help="The store config YAML to validate.")],
) -> None:
    """Validate a config file (and its planogram); name every wrong key."""
    from devices.layout import load_planogram  # noqa: PLC0415 - keep CLI start-up light

    cfg = _load(file)
    try:
        planogram = load_planogram(cfg.planogram)
    except (OSError, ValueError) as exc:
        typer.echo(f"error: planogram {cfg.planogram}: {exc}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(
        f"{file}: OK (store {cfg.store_id}, {len(planogram.shelves)} shelves, "
        f"{len(planogram.products)} products, {len(cfg.gates)} gates, "
        f"broker {cfg.mqtt.broker})"
    )


@config_app.command("show")
def config_show(config: ConfigOption = None) -> None:
    """Print the effective config (file + environment), secrets masked."""
    cfg = _load(config)
    typer.echo(cfg.model_dump_json(indent=2))


@app.command()
def demo(
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: run until Ctrl-C).")
    ] = None,
    api_port: Annotated[int, typer.Option(help="Port of the API and live page.")] = 8080,
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON object per line; the last is a summary.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the store simulator.")] = 0,
    data_dir: Annotated[
        Path | None, typer.Option(help="Keep the gateway database here (default: a temp dir).")
    ] = None,
    mqtt_port: Annotated[
        int | None, typer.Option(help="Port of the embedded broker (default 1883, or a free one).")
    ] = None,
    hq_url: Annotated[
        str | None,
        typer.Option(help="Sync to this HQ (key in STOREEDGE_HQ_STORE_KEY); default: a local HQ."),
    ] = None,
    store_id: Annotated[str | None, typer.Option(help="This store's id at HQ.")] = None,
    hq: Annotated[bool, typer.Option("--hq/--no-hq", help="Sync to an HQ at all.")] = True,
    drain: Annotated[
        float, typer.Option(help="On shutdown, wait this long for the outbox to empty.")
    ] = 30.0,
    config: ConfigOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Run a whole simulated store: broker, gateway, shelves, gates, shoppers and the API.

    Prints every receipt as it is issued and checks it against the simulator's
    ground truth.
    """
    from edge.demo import HqOptions, run_demo  # noqa: PLC0415

    _setup_logging(verbose)
    cfg = _load(config)
    try:
        result = run_demo(
            cfg,
            duration_s=duration,
            api_port=api_port,
            as_json=json_output,
            seed=seed,
            data_dir=data_dir,
            mqtt_port=mqtt_port,
            hq=HqOptions(url=hq_url, store_id=store_id, enabled=hq, drain_s=drain),
            out=sys.stdout,
        )
    except (OSError, RuntimeError, TimeoutError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    if result.receipts != result.receipts_correct:
        raise typer.Exit(code=3)


#: The AiFi Nanostore reference data: $STOREEDGE_AIFI_DIR, or beside the repository.
@bench_app.command("ingest")
def bench_ingest_cmd(
    shelves: Annotated[int, typer.Option(help="Simulated shelves.")] = 30,
    plates: Annotated[int, typer.Option(help="Plates per shelf.")] = 10,
    seconds: Annotated[float, typer.Option(help="How long to run.")] = 10.0,
    config: ConfigOption = None,
) -> None:
    """Weight telemetry through the live ingest path (decode, dedupe, detect), one thread."""
    import json  # noqa: PLC0415

    from edge.bench import bench_ingest  # noqa: PLC0415

    _setup_logging(False)
    result = bench_ingest(_load(config), shelves=shelves, plates=plates, seconds=seconds)
    typer.echo(json.dumps(result))


@bench_app.command("fleet")
def bench_fleet_cmd(
    devices: Annotated[int, typer.Option(help="Simulated devices of mixed types.")] = 500,
    seconds: Annotated[float, typer.Option(help="Measured window.")] = 30.0,
    warmup: Annotated[float, typer.Option(help="Seconds before measuring.")] = 10.0,
    broker: Annotated[
        str | None, typer.Option(help="mqtt://host:port (default: a Mosquitto started here).")
    ] = None,
) -> None:
    """One gateway process and DEVICES simulated devices: the gateway's CPU share and RSS."""
    from edge.bench_fleet import main_json  # noqa: PLC0415

    _setup_logging(False)
    typer.echo(main_json(devices=devices, seconds=seconds, warmup_s=warmup, broker=broker))


sim_app = typer.Typer(invoke_without_command=True)  # `sim --broker ...` runs as before
app.add_typer(sim_app, name="sim")
sim_app.command("fleet")(sim_fleet_cmd)


@sim_app.callback()
def sim(
    ctx: typer.Context,
    broker: Annotated[
        str | None,
        typer.Option(help="Broker URL, e.g. mqtt://127.0.0.1:1883 (needed without a sub-command)."),
    ] = None,
    shoppers: Annotated[int | None, typer.Option(help="Stop after this many shoppers.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the store simulator.")] = 0,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            help="Inject a fault: KEY=VALUE for every device, KEY=VALUE@DEVICE, "
            "KEY=VALUE@type:TYPE, or FAULT=SHELF:PLATE:VALUE for a load cell (repeatable; "
            "applied after --faults).",
        ),
    ] = None,
    faults_file: Annotated[
        Path | None, typer.Option("--faults", help="A YAML file of faults (firmware_sim.faults).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Run the simulated store's devices and shoppers against a broker (no gateway).

    Prints each shopper's ground truth as one JSON line.  The config's shelf
    labels (esls) run too.

    Faults, for every device, one (@shelf-1) or a type (@type:esl); the whole
    list is in firmware_sim/faults.py:

    clock_skew_ms=-5000, duplicate_rate=0.05, reorder_rate=0.05,
    disconnect_every_s=30 with disconnect_for_s=2,
    power_cycle_every_s=60 with power_off_s=1,
    impersonate=shelf-2@shelf-1 with impersonate_rate=1, seed=N;
    load cells: stuck=shelf-1:3, noisy=shelf-1:3:25 (sd, g),
    drift=shelf-1:3:30 (g/min), saturate=shelf-1:3.

    'storeedge sim fleet --stores N' instead runs N light simulated gateways
    against one HQ and reports the events per second HQ ingests.
    """
    if ctx.invoked_subcommand is not None:
        return
    if broker is None:
        typer.echo("error: --broker URL is required (or a sub-command, e.g. 'fleet')", err=True)
        raise typer.Exit(code=2)
    import json  # noqa: PLC0415

    from devices.layout import load_planogram  # noqa: PLC0415
    from firmware_sim.faults import FaultError, load_faults, parse_faults  # noqa: PLC0415
    from firmware_sim.store import StoreSimulator  # noqa: PLC0415

    _setup_logging(False)
    cfg = _load(config)
    host, port = cfg.mqtt.model_copy(update={"broker": broker}).broker_address()
    gates = {g.direction: g.device_id for g in cfg.gates}
    try:
        faults = parse_faults(fault or [], load_faults(faults_file) if faults_file else None)
        store_sim = StoreSimulator(
            load_planogram(cfg.planogram),
            cfg.store_id,
            host,
            port,
            entry_gate=gates["entry"],
            exit_gate=gates["exit"],
            seed=seed,
            esls=[esl.device_id for esl in cfg.esls],
            faults=faults,
        )
    except FaultError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    store_sim.start()
    try:
        store_sim.run(
            stop,
            max_shoppers=shoppers,
            on_done=lambda t: typer.echo(
                json.dumps(
                    {
                        "type": "truth",
                        "token": t.token,
                        "lines": t.lines,
                        "total_minor": t.total_minor,
                    }
                )
            ),
        )
    finally:
        store_sim.stop()


@app.command()
def gateway(
    config: ConfigOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Run the gateway alone against the configured broker (production)."""
    from edge.api.server import serve_gateway  # noqa: PLC0415
    from edge.app import Gateway  # noqa: PLC0415

    _setup_logging(verbose)
    cfg = _load(config)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    gw = Gateway(cfg)
    gw.start()
    token = cfg.api.staff_token.get_secret_value() if cfg.api.staff_token else None
    api = serve_gateway(gw, cfg.api.host, cfg.api.port, token)
    typer.echo(f"gateway for store {cfg.store_id} running; API on {api.url}", err=True)
    stop.wait()
    api.stop()
    gw.stop()


if __name__ == "__main__":
    app()
