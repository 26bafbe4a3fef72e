"""What every ``storeedge`` command shares: the config option, logging, loading."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from edge.config import ConfigError, GatewayConfig, default_config_path, load_config

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Store config YAML (default: config/store.yaml)."),
]


def setup_logging(verbose: bool) -> None:
    level = os.environ.get("STOREEDGE_LOG_LEVEL", "DEBUG" if verbose else "WARNING")
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def load(path: Path | None) -> GatewayConfig:
    """The config, or exit 2 with the wrong key named."""
    try:
        return load_config(path or default_config_path())
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
