"""Fixtures for the firmware simulator tests.

The broker (``mosquitto``) and ``unique_store_id`` come from ``tests/conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.layout import Planogram, load_planogram

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def planogram() -> Planogram:
    """The example planogram: three shelves of four plates."""
    return load_planogram(ROOT / "config" / "planogram.yaml")
