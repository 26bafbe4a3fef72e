"""``storeedge sim fleet``: N light simulated gateways against one HQ (a benchmark)."""

from __future__ import annotations

from typing import Annotated

import typer

from edge.commands.common import setup_logging as _setup_logging


def sim_fleet_cmd(
    stores: Annotated[int, typer.Option(help="Simulated gateways (stores).")] = 10,
    seconds: Annotated[
        float, typer.Option(help="Steady phase: how long each store keeps writing (0: none).")
    ] = 10.0,
    backlog: Annotated[
        int, typer.Option(help="Unsent events each store holds when it comes back from an outage.")
    ] = 5000,
    rate: Annotated[float, typer.Option(help="Steady phase: events per second per store.")] = 100.0,
    processes: Annotated[
        int, typer.Option(help="Worker processes for the gateways (0: one per CPU).")
    ] = 0,
    batch: Annotated[int, typer.Option(help="Rows per batch the senders ship (at most).")] = 500,
    hq_url: Annotated[
        str | None,
        typer.Option(help="An HQ already running (stores created with $STOREEDGE_HQ_ADMIN_TOKEN)."),
    ] = None,
    hq_db: Annotated[
        str | None,
        typer.Option(
            help="HQ's database when the bench starts HQ: a SQLite file or postgresql:// URL."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic traffic.")] = 0,
) -> None:
    """N simulated gateways (the real outbox and sender, synthetic traffic) against one HQ.

    Prints one JSON object: events_per_s (the outage backlog of every store drained
    at once: what HQ ingests flat out), the steady phase's acknowledged events per
    second and the backlog it left, and whether HQ holds every event exactly once.
    """
    from edge.sim_fleet import FleetOptions, main_json  # noqa: PLC0415 - keep start-up light

    if hq_url is not None and hq_db is not None:
        typer.echo("error: --hq-url and --hq-db exclude each other", err=True)
        raise typer.Exit(code=2)
    _setup_logging(False)
    opts = FleetOptions(
        stores=stores,
        backlog=backlog,
        seconds=seconds,
        rate=rate,
        processes=processes,
        batch=batch,
        hq_url=hq_url,
        hq_db=hq_db,
        seed=seed,
    )
    try:
        typer.echo(main_json(opts))
    except (OSError, RuntimeError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
