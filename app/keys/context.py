"""What the gateway knows about a verified key: a plain snapshot of one row, no ORM object."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class KeyContext:
    id: int
    public_id: str
    name: str
    prefix: str
    scope: str  # full | llm | read
    expires_at: datetime | None
    allowed_models: frozenset[str]  # empty = every enabled model
    allowed_cidrs: tuple[str, ...]  # empty = any address
    quota_micro: int | None  # None = unlimited
    quota_monthly: bool
    quota_period: str | None
    used_micro: int
    reserved_micro: int
    rpm: int | None
    rph: int | None
    monthly_requests: int | None
    max_concurrent: int | None
    keep_conversations: bool = False  # resolved: the key's own choice, else the organisation default
    assistant_id: str | None = None  # the only assistant the key may call


@dataclass(frozen=True)
class KeyRejection:
    """Why a raw key was refused: malformed | unknown | disabled | revoked | expired."""

    reason: str
