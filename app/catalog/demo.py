"""Which catalog models the built-in demo provider serves. The UI marks them "demo" wherever it lists
models (key dialog, playground, "Use the API", usage dashboard), so nobody mistakes them for a real model.
"""
from __future__ import annotations

from app.catalog import service as catalog


def is_demo_entry(entry) -> bool:
    """True for a catalog entry (ModelEntry) whose connection is of kind demo."""
    target = getattr(entry, "target", None)
    return target is not None and target.kind == "demo"


def is_demo_model(public_id: str | None) -> bool:
    """True when the catalog has a demo model with this public id (enabled or not)."""
    if not public_id:
        return False
    return is_demo_entry(catalog.lookup_model(public_id, enabled_only=False))


def demo_model_ids(enabled_only: bool = True) -> list[str]:
    """Public ids of the demo models, sorted."""
    return [entry.public_id for entry in catalog.list_models(enabled_only=enabled_only) if is_demo_entry(entry)]
