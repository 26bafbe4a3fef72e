"""Fixtures for the vision tests: synthetic videos, and the AiFi footage when it is here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firmware_sim.aifi.dataset import find_dataset
from tests.vision.helpers import walking_scene, write_video

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def aifi() -> Path:
    """The AiFi Nanostore dataset folder; the test is skipped where it is absent (CI)."""
    root = find_dataset()
    if root is None or not (root / "video").is_dir():
        pytest.skip("the AiFi Nanostore dataset (with video/) is not here")
    return root


@pytest.fixture(scope="session")
def footage_labels() -> dict[str, object]:
    data: dict[str, object] = json.loads((FIXTURES / "aifi_cps_test_01.json").read_text())
    return data


@pytest.fixture
def walking_video(tmp_path: Path) -> Path:
    return write_video(tmp_path / "walk.avi", walking_scene())
