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
from edge.commands.replay import replay_app

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
bench_app = typer.Typer(
    help="Benchmarks (numbers for the README, not tests).", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")


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
    config: ConfigOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Run a whole simulated store: broker, gateway, shelves, gates, shoppers and the API.

    Prints every receipt as it is issued and checks it against the simulator's
    ground truth.
    """
    from edge.demo import run_demo  # noqa: PLC0415

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


@app.command()
def sim(
    broker: Annotated[str, typer.Option(help="Broker URL, e.g. mqtt://127.0.0.1:1883.")],
    shoppers: Annotated[int | None, typer.Option(help="Stop after this many shoppers.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the store simulator.")] = 0,
    config: ConfigOption = None,
) -> None:
    """Run the simulated store's devices and shoppers against a broker (no gateway).

    Prints each shopper's ground truth as one JSON line.
    """
    import json  # noqa: PLC0415

    from devices.layout import load_planogram  # noqa: PLC0415
    from firmware_sim.store import StoreSimulator  # noqa: PLC0415

    _setup_logging(False)
    cfg = _load(config)
    host, port = cfg.mqtt.model_copy(update={"broker": broker}).broker_address()
    gates = {g.direction: g.device_id for g in cfg.gates}
    store_sim = StoreSimulator(
        load_planogram(cfg.planogram),
        cfg.store_id,
        host,
        port,
        entry_gate=gates["entry"],
        exit_gate=gates["exit"],
        seed=seed,
    )
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
