"""Plain, immutable views of catalog rows for the gateway hot path (no ORM objects there)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class UpstreamTarget:
    """Everything a provider adapter needs to reach one upstream connection."""

    connection_id: int
    name: str
    kind: str  # openai | azure | anthropic | demo
    base_url: str
    api_key: str | None  # decrypted credential, kept only in memory
    api_version: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 120.0
    total_timeout: float = 600.0


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
