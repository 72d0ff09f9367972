"""Plain, immutable views of catalog rows for the gateway hot path (no ORM objects there)."""
from __future__ import annotations

from dataclasses import dataclass, field

from app.providers.base import UpstreamTarget


@dataclass(frozen=True)
class ModelEntry:
    """One model offered to clients."""

    id: int
    public_id: str
    display_name: str
    upstream_model: str
    enabled: bool
    input_price: float  # credits per million input tokens
    output_price: float  # credits per million output tokens
    capabilities: frozenset[str] = field(default_factory=frozenset)
    max_output_tokens: int = 4096
    created: int = 0  # unix seconds, for /v1/models
    target: UpstreamTarget | None = None
