"""The ``storeedge`` command."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from edge.config import ConfigError, GatewayConfig, default_config_path, load_config
from firmware_sim.aifi.dataset import find_dataset

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
replay_app = typer.Typer(
    help="Replay labelled or synthetic shopping cases through the gateway and score it.",
    no_args_is_help=True,
)
app.add_typer(replay_app, name="replay")
devices_app = typer.Typer(
    help="Provision devices and write the store broker's configuration.", no_args_is_help=True
)
app.add_typer(devices_app, name="devices")
bench_app = typer.Typer(
    help="Benchmarks (numbers for the README, not tests).", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Store config YAML (default: config/store.yaml)."),
]


def _setup_logging(verbose: bool) -> None:
    level = os.environ.get("STOREEDGE_LOG_LEVEL", "DEBUG" if verbose else "WARNING")
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _load(path: Path | None) -> GatewayConfig:
    try:
        return load_config(path or default_config_path())
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None


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
DEFAULT_AIFI = find_dataset() or Path("../shared/datasets/aifi-nanostore")
SpeedOption = Annotated[
    str, typer.Option(help="fast: as fast as the CPU allows; realtime: at the store's pace.")
]


def _print_replay(result: Any, as_json: bool, receipts_out: Path | None) -> None:
    import json  # noqa: PLC0415

    summary = result.summary()
    if receipts_out is not None:
        receipts_out.write_text(json.dumps(result.receipts_out(), indent=1, sort_keys=True))
    if as_json:
        typer.echo(json.dumps(summary))
        return
    for case in summary["per_case"]:
        typer.echo(f"{case['dataset']:<24} F1 {case['f1']:.3f}{'  exact' if case['exact'] else ''}")
    typer.echo(
        f"{summary['cases']} cases, {summary['items_gt']} items: precision "
        f"{summary['precision']:.3f}, recall {summary['recall']:.3f}, F1 {summary['f1']:.3f}, "
        f"exact {summary['exact_match_rate']:.1%}, review {summary['review_rate']:.1%}, "
        f"pick to cart p99 {summary['pick_to_cart_p99_ms']} ms, exit to receipt p99 "
        f"{summary['exit_to_receipt_p99_ms']} ms, {summary['samples_per_s']} samples/s"
    )


@replay_app.command("aifi")
def replay_aifi(
    store: Annotated[Path, typer.Option(help="The AiFi Nanostore folder.")] = DEFAULT_AIFI,
    cases: Annotated[
        Path | None, typer.Option(help="Cases in the AiFi ground-truth format.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the synthesised sensor data.")] = 0,
    speed: SpeedOption = "fast",
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    receipts_out: Annotated[
        Path | None, typer.Option(help="Write the receipts the gateway issued here.")
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option(help="Replay only these datasets (repeatable).")
    ] = None,
) -> None:
    """Replay the real AiFi Nanostore's labelled cases through the gateway and score it."""
    from edge.replay.runner import replay  # noqa: PLC0415
    from firmware_sim.aifi.cases import load_cases  # noqa: PLC0415
    from firmware_sim.aifi.layout import load_store  # noqa: PLC0415

    _setup_logging(False)
    if speed not in {"fast", "realtime"}:
        raise typer.BadParameter("speed must be fast or realtime", param_hint="--speed")
    aifi = load_store(store)
    selected = load_cases(cases or store / "ground_truth" / "dev.json")
    if only:
        selected = [c for c in selected if c.name in set(only)]
    result = replay(selected, aifi, seed=seed, speed=speed)  # type: ignore[arg-type]
    _print_replay(result, json_output, receipts_out)


@replay_app.command("synthetic")
def replay_synthetic(
    shoppers: Annotated[int, typer.Option(help="Shoppers in all.")] = 40,
    minutes: Annotated[float, typer.Option(help="Store minutes in all.")] = 10.0,
    seed: Annotated[int, typer.Option(help="Seed of the cases and the sensor data.")] = 0,
    store: Annotated[Path, typer.Option(help="The AiFi Nanostore folder.")] = DEFAULT_AIFI,
    speed: SpeedOption = "fast",
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    receipts_out: Annotated[
        Path | None, typer.Option(help="Write the receipts the gateway issued here.")
    ] = None,
) -> None:
    """Harder cases than the labels hold, on the AiFi layout: up to 8 shoppers at once,
    simultaneous picks, equal weights side by side, hand-offs, long holds."""
    from edge.replay.runner import replay  # noqa: PLC0415
    from firmware_sim.aifi.layout import load_store  # noqa: PLC0415
    from firmware_sim.replay.synthetic import generate_cases  # noqa: PLC0415

    _setup_logging(False)
    aifi = load_store(store)
    generated = generate_cases(aifi.planogram, shoppers=shoppers, minutes=minutes, seed=seed)
    result = replay(generated, aifi, seed=seed, speed=speed)  # type: ignore[arg-type]
    _print_replay(result, json_output, receipts_out)


DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Folder of the gateway's database (default: from config)."),
]


def _registry(data_dir: Path | None, config: Path | None) -> tuple[Any, GatewayConfig]:
    from edge.store.repo import Store  # noqa: PLC0415

    cfg = _load(config)
    db = data_dir / cfg.database.path.name if data_dir else cfg.database.path
    return Store.open(db), cfg


@devices_app.command("provision")
def devices_provision(
    store: Annotated[str, typer.Option(help="The store id the device belongs to.")],
    device_id: Annotated[str, typer.Option("--id", help="The device id (its MQTT username).")],
    device_type: Annotated[str, typer.Option("--type", help="shelf, gate, esl, fridge, camera.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Register a device and create its own MQTT credentials (shown once, stored hashed)."""
    import json  # noqa: PLC0415
    import time  # noqa: PLC0415

    from pydantic import TypeAdapter, ValidationError  # noqa: PLC0415

    from devices.credentials import generate_password, hash_password  # noqa: PLC0415
    from devices.protocol import GATEWAY_ID, DeviceId, DeviceType  # noqa: PLC0415

    try:
        kind = DeviceType(device_type)
        TypeAdapter(DeviceId).validate_python(device_id)
        TypeAdapter(DeviceId).validate_python(store)
    except (ValueError, ValidationError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if device_id == GATEWAY_ID:
        typer.echo(f"error: {GATEWAY_ID!r} is reserved for the gateway", err=True)
        raise typer.Exit(code=2)
    registry, _ = _registry(data_dir, config)
    password = generate_password()
    try:
        registry.provision(
            store, device_id, kind.value, hash_password(password), int(time.time() * 1000)
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    finally:
        registry.close()
    out = {
        "store_id": store,
        "device_id": device_id,
        "type": kind.value,
        "username": device_id,
        "password": password,
    }
    typer.echo(
        json.dumps(out)
        if json_output
        else f"device {device_id} ({kind.value}) provisioned for store {store}\n"
        f"username: {device_id}\npassword: {password}\n(shown only now)"
    )


@devices_app.command("broker-config")
def devices_broker_config(
    out: Annotated[Path, typer.Option(help="Folder for mosquitto.conf, passwd, acl.")],
    port: Annotated[int, typer.Option(help="MQTT port of the store LAN listener.")] = 1883,
    bind: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",  # noqa: S104
    store: Annotated[str | None, typer.Option(help="Store id (default: from config).")] = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Write a Mosquitto config in which each device may publish only under its own id;
    the gateway's new credentials go to OUT/gateway.json."""
    import time  # noqa: PLC0415

    from devices.broker_config import render  # noqa: PLC0415
    from devices.credentials import generate_password, hash_password  # noqa: PLC0415
    from devices.protocol import GATEWAY_ID  # noqa: PLC0415
    from edge.config import default_config_dir  # noqa: PLC0415

    registry, cfg = _registry(data_dir, config)
    password = generate_password()
    try:
        registry.set_gateway_credentials(
            GATEWAY_ID, hash_password(password), int(time.time() * 1000)
        )
        users = registry.credentials()
    finally:
        registry.close()
    templates = default_config_dir() / "mosquitto"
    out = out.resolve()
    files = render(
        conf_template=(templates / "mosquitto.conf.template").read_text(),
        acl_template=(templates / "acl.template").read_text(),
        store_id=store or cfg.store_id,
        out_dir=out,
        port=port,
        bind_address=bind,
        gateway_user=GATEWAY_ID,
        users=users,
    )
    _write_broker_files(out, files, {"username": GATEWAY_ID, "password": password})
    typer.echo(f"wrote {out}/mosquitto.conf, passwd ({len(users)} users), acl, gateway.json")


def _write_broker_files(out: Path, files: Any, gateway: dict[str, str]) -> None:
    """Readable by the broker's own user (Mosquitto drops root), secrets by nobody else."""
    import grp  # noqa: PLC0415
    import json  # noqa: PLC0415
    import pwd  # noqa: PLC0415
    import shutil  # noqa: PLC0415

    (out / "data").mkdir(parents=True, exist_ok=True)
    (out / "mosquitto.conf").write_text(files.conf)
    (out / "passwd").write_text(files.passwords)
    (out / "acl").write_text(files.acl)
    secret = out / "gateway.json"
    secret.write_text(json.dumps(gateway) + "\n")
    secret.chmod(0o600)
    out.chmod(0o750)
    for name in ("mosquitto.conf", "passwd", "acl"):
        (out / name).chmod(0o640)
    try:
        group = grp.getgrnam("mosquitto").gr_name
        user = pwd.getpwnam("mosquitto").pw_name
    except KeyError:
        return  # no mosquitto user here: the files stay the caller's own
    if os.geteuid() == 0:
        for path in (out, out / "mosquitto.conf", out / "passwd", out / "acl"):
            shutil.chown(path, group=group)
        shutil.chown(out / "data", user=user, group=group)


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
