"""``storeedge replay``: labelled or synthetic cases through the gateway, scored."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from edge.commands.common import setup_logging as _setup_logging
from firmware_sim.aifi.dataset import find_dataset

replay_app = typer.Typer(
    help="Replay labelled or synthetic shopping cases through the gateway and score it.",
    no_args_is_help=True,
)

DEFAULT_AIFI = find_dataset() or Path("../shared/datasets/aifi-nanostore")
SpeedOption = Annotated[
    str, typer.Option(help="fast: as fast as the CPU allows; realtime: at the store's pace.")
]
VisionOption = Annotated[
    bool,
    typer.Option(
        "--vision",
        help="Add a simulated product camera: the true product of each grab rendered, "
        "degraded and scored by the shipped classifier (an upper bound, not a field result).",
    ),
]


def _quiet_alerts() -> None:
    """The replay's plates drift on purpose (up to 20 g a case), and the gateway rightly
    raises maintenance alerts for them; in a replay their log lines are noise on stderr.
    The alerts are still raised and stored; only their warnings are held back."""
    import logging  # noqa: PLC0415

    logging.getLogger("edge.alerts").setLevel(logging.ERROR)


def _camera(vision: bool) -> Any:
    if not vision:
        return None
    from edge.replay.product_camera import ProductCamera  # noqa: PLC0415

    return ProductCamera()


def _print_replay(result: Any, as_json: bool, receipts_out: Path | None) -> None:
    import json  # noqa: PLC0415

    summary = result.summary()
    if receipts_out is not None:
        receipts_out.write_text(json.dumps(result.receipts_out(), indent=1, sort_keys=True))
    if as_json:
        typer.echo(json.dumps(summary))
        return
    for note in result.retimed:
        typer.echo(f"retimed: {note}", err=True)
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
    vision: VisionOption = False,
) -> None:
    """Replay the real AiFi Nanostore's labelled cases through the gateway and score it."""
    from edge.replay.runner import replay  # noqa: PLC0415
    from firmware_sim.aifi.cases import load_cases  # noqa: PLC0415
    from firmware_sim.aifi.layout import load_store  # noqa: PLC0415

    _setup_logging(False)
    _quiet_alerts()
    if speed not in {"fast", "realtime"}:
        raise typer.BadParameter("speed must be fast or realtime", param_hint="--speed")
    aifi = load_store(store)
    selected = load_cases(cases or store / "ground_truth" / "dev.json")
    if only:
        selected = [c for c in selected if c.name in set(only)]
    result = replay(selected, aifi, seed=seed, speed=speed, camera=_camera(vision))  # type: ignore[arg-type]
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
    vision: VisionOption = False,
) -> None:
    """Harder cases than the labels hold, on the AiFi layout: up to 8 shoppers at once,
    simultaneous picks, equal weights side by side, hand-offs, long holds."""
    from edge.replay.runner import replay  # noqa: PLC0415
    from firmware_sim.aifi.layout import load_store  # noqa: PLC0415
    from firmware_sim.replay.synthetic import generate_cases  # noqa: PLC0415

    _setup_logging(False)
    _quiet_alerts()
    aifi = load_store(store)
    generated = generate_cases(aifi.planogram, shoppers=shoppers, minutes=minutes, seed=seed)
    result = replay(generated, aifi, seed=seed, speed=speed, camera=_camera(vision))  # type: ignore[arg-type]
    _print_replay(result, json_output, receipts_out)
