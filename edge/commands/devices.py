"""``storeedge devices``: provisioning and the store broker's configuration."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from edge.commands.common import ConfigOption
from edge.commands.common import load as _load
from edge.config import GatewayConfig
from edge.store.repo import Store

devices_app = typer.Typer(
    help="Provision devices and write the store broker's configuration.", no_args_is_help=True
)

DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Folder of the gateway's database (default: from config)."),
]


def _registry(data_dir: Path | None, config: Path | None) -> tuple[Store, GatewayConfig]:
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
