"""Where the AiFi Nanostore reference data lives.

``$STOREEDGE_AIFI_DIR`` when set, else ``shared/datasets/aifi-nanostore`` inside
the repository or next to it (``../shared/...``, as DESIGN.md places it).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "STOREEDGE_AIFI_DIR"
_RELATIVE = Path("shared") / "datasets" / "aifi-nanostore"
_REPO = Path(__file__).resolve().parents[2]


def find_dataset() -> Path | None:
    """The dataset folder (it holds ``planogram.json``), or None when it is not here."""
    configured = os.environ.get(ENV_VAR)
    candidates = [Path(configured)] if configured else [_REPO / _RELATIVE, _REPO.parent / _RELATIVE]
    for candidate in candidates:
        if (candidate / "planogram.json").is_file():
            return candidate
    return None
