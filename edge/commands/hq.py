"""``storeedge hq``: run HQ, and manage the stores it knows (their API keys)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from edge.commands.common import setup_logging as _setup_logging

hq_app = typer.Typer(
    help=(
        "HQ: ingest from every store's gateway, the fleet, transactions and stock across "
        "stores.  'storeedge hq --db PATH --port N' serves it; the admin token comes from "
        "$STOREEDGE_HQ_ADMIN_TOKEN."
    ),
    invoke_without_command=True,
)
stores_app = typer.Typer(help="The stores HQ knows and their API keys.", no_args_is_help=True)
hq_app.add_typer(stores_app, name="stores")

DbOption = Annotated[
    str,
    typer.Option("--db", help="HQ's SQLite file, or a postgresql:// URL (psycopg 3)."),
]


@hq_app.callback()
def hq_serve(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option("--db", help="HQ's SQLite file, or a postgresql:// URL (psycopg 3)."),
    ] = None,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8900,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    stale_after: Annotated[
        float, typer.Option(help="Seconds without a heartbeat after which a store is stale.")
    ] = 60.0,
    ssl_certfile: Annotated[
        Path | None, typer.Option(help="TLS certificate (PEM) to serve https.")
    ] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Serve HQ (when no sub-command is given)."""
    if ctx.invoked_subcommand is not None:
        return
    from cloud_sync.hq.auth import ADMIN_TOKEN_ENV  # noqa: PLC0415 - keep CLI start-up light
    from cloud_sync.hq.server import serve_forever  # noqa: PLC0415

    if db is None:
        typer.echo("error: --db PATH (or a postgresql:// URL) is required", err=True)
        raise typer.Exit(code=2)
    if (ssl_certfile is None) != (ssl_keyfile is None):
        typer.echo("error: --ssl-certfile and --ssl-keyfile go together", err=True)
        raise typer.Exit(code=2)
    _setup_logging(verbose)
    admin_token = os.environ.get(ADMIN_TOKEN_ENV) or None
    if admin_token is None:
        typer.echo(
            f"warning: {ADMIN_TOKEN_ENV} is not set: the fleet, transactions and stock APIs "
            "answer 503 until it is",
            err=True,
        )
    scheme = "https" if ssl_certfile else "http"
    typer.echo(f"HQ on {scheme}://{host}:{port}/fleet (database {_shown(db)})", err=True)
    try:
        serve_forever(
            db,
            host=host,
            port=port,
            admin_token=admin_token,
            stale_after_s=stale_after,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
            log_level="debug" if verbose else "warning",
        )
    except (OSError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None


def _shown(db: str) -> str:
    """The database, without a password in a URL."""
    from urllib.parse import urlsplit  # noqa: PLC0415

    parts = urlsplit(db)
    if parts.scheme.startswith("postgres") and parts.password:
        return db.replace(f":{parts.password}@", ":***@")
    return db


@stores_app.command("add")
def stores_add(
    db: DbOption,
    store_id: Annotated[str, typer.Option("--id", help="The store id (as in its config).")],
    name: Annotated[str | None, typer.Option(help="A name for people.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Add a store and create its API key (shown once, stored hashed)."""
    import json  # noqa: PLC0415
    import time  # noqa: PLC0415

    from pydantic import TypeAdapter, ValidationError  # noqa: PLC0415

    from cloud_sync.hq.auth import hash_key, new_api_key  # noqa: PLC0415
    from cloud_sync.hq.db import HqDatabase  # noqa: PLC0415
    from cloud_sync.wire import Ident  # noqa: PLC0415

    try:
        TypeAdapter(Ident).validate_python(store_id)
    except ValidationError:
        typer.echo(
            f"error: {store_id!r} is not a valid store id ([A-Za-z0-9_.:-]{{1,64}})", err=True
        )
        raise typer.Exit(code=2) from None
    key = new_api_key()
    database = HqDatabase.open(db)
    try:
        database.add_store(store_id, name, hash_key(key), int(time.time() * 1000))
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    finally:
        database.close()
    if json_output:
        typer.echo(json.dumps({"store_id": store_id, "api_key": key}))
    else:
        typer.echo(f"store {store_id} added\napi key: {key}\n(shown only now)")


@stores_app.command("rotate-key")
def stores_rotate_key(
    db: DbOption,
    store_id: Annotated[str, typer.Option("--id", help="The store id.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Give a store a new API key; the old one stops working at once."""
    import json  # noqa: PLC0415

    from cloud_sync.hq.auth import hash_key, new_api_key  # noqa: PLC0415
    from cloud_sync.hq.db import HqDatabase  # noqa: PLC0415

    key = new_api_key()
    database = HqDatabase.open(db)
    try:
        database.set_key(store_id, hash_key(key))
    except LookupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    finally:
        database.close()
    typer.echo(json.dumps({"store_id": store_id, "api_key": key}) if json_output else key)


@stores_app.command("list")
def stores_list(
    db: DbOption,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The stores HQ knows."""
    import json  # noqa: PLC0415

    from cloud_sync.hq.db import HqDatabase  # noqa: PLC0415

    database = HqDatabase.open(db)
    try:
        rows = database.stores()
    finally:
        database.close()
    if json_output:
        typer.echo(json.dumps([{"store_id": r.store_id, "name": r.name} for r in rows]))
    else:
        for r in rows:
            typer.echo(f"{r.store_id}\t{r.name or ''}")


@hq_app.command("publish")
def hq_publish(
    db: DbOption,
    kind: Annotated[str, typer.Option(help="catalog, prices, planogram or config.")],
    file: Annotated[Path, typer.Option(help="The document, JSON or YAML.")],
    store_id: Annotated[
        str | None, typer.Option("--store-id", help="For this store only (default: every store).")
    ] = None,
    note: Annotated[str | None, typer.Option(help="Why, for people.")] = None,
) -> None:
    """Publish a new version of a store's (or every store's) catalog, prices, planogram
    or gateway configuration; the gateways fetch it.  Prints the version as JSON."""
    import json  # noqa: PLC0415
    import time  # noqa: PLC0415

    import yaml  # noqa: PLC0415
    from pydantic import ValidationError  # noqa: PLC0415

    from cloud_sync.hq.db import HqDatabase  # noqa: PLC0415
    from cloud_sync.wire import ALL_STORES, BODY_MODELS, DOC_KINDS  # noqa: PLC0415

    if kind not in DOC_KINDS:
        typer.echo(f"error: --kind must be one of {', '.join(DOC_KINDS)}", err=True)
        raise typer.Exit(code=2)
    try:
        body = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        typer.echo(f"error: {file}: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if not isinstance(body, dict):
        typer.echo(f"error: {file}: the document must be a mapping", err=True)
        raise typer.Exit(code=2)
    model = BODY_MODELS.get(kind)
    if model is not None:
        try:
            model.model_validate(body)
        except ValidationError as exc:
            typer.echo(f"error: {file}: {exc}", err=True)
            raise typer.Exit(code=2) from None
    database = HqDatabase.open(db)
    try:
        doc = database.publish(kind, store_id or ALL_STORES, body, note, int(time.time() * 1000))
    except LookupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    finally:
        database.close()
    typer.echo(json.dumps({"kind": doc.kind, "version": doc.version, "scope": doc.scope}))
