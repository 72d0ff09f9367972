"""Where templates, static files and migrations live: beside app/ in a checkout, under share/ when installed."""
from __future__ import annotations

import sys
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent


def resource_dir(name: str) -> Path:
    for candidate in (_REPO_ROOT / name, Path(sys.prefix) / "share" / "pforte" / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"Pforte resource folder '{name}' not found")
