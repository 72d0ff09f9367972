"""Per-key policy for the gateway: IP allow list, rate limits and concurrency, scope, model allow list,
credit budget. Each check returns None when allowed or raises PolicyDenied.

INTERFACE CONTRACT (used by app/gateway/pipeline.py). The bodies below are placeholders that allow
everything; the policy work (issue 4) replaces them without changing the signatures.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from app.catalog.entries import ModelEntry
from app.keys.context import KeyContext


class PolicyDenied(Exception):
    """A refused request. The gateway turns it into the DESIGN §6 error of the same status and code."""

    def __init__(self, status: int, error_type: str, code: str, message: str,
                 headers: dict[str, str] | None = None, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.retry_after = retry_after


@dataclass
class LimitGrant:
    """Holds a concurrency slot (if any) until release(); headers() are added to the response."""

    response_headers: dict[str, str] = field(default_factory=dict)

    def headers(self) -> dict[str, str]:
        return self.response_headers

    def release(self) -> None:
        """Free the concurrency slot. Idempotent."""


@dataclass
class Reservation:
    """Credits reserved before forwarding; settled inside the settle transaction."""

    key_id: int
    key_reserved_micro: int = 0
    org_reserved_micro: int = 0

    def settle(self, conn, cost_micro: int) -> None:
        """Run inside the settle transaction (a SQLAlchemy Connection): release the reservation and
        book cost_micro against the organisation allowance. The key's used_micro is booked by settle itself."""


def check_ip(key: KeyContext, client_ip: str) -> None:
    """Step 3: 403 ip_not_allowed when the key has an allow list that does not contain client_ip."""


def acquire_limits(key: KeyContext, client_ip: str) -> LimitGrant:
    """Step 4: per-IP limit, the key's per-minute/hour/month limits and concurrency (429 when refused)."""
    return LimitGrant()


def check_scope(key: KeyContext, endpoint: str, method: str) -> None:
    """Step 5: 403 scope_not_allowed when the key's scope does not cover this endpoint.
    endpoint is one of: chat, completions, embeddings, messages, models."""


def check_model(key: KeyContext, model: ModelEntry) -> None:
    """Step 6: 403 model_not_allowed when the key has a model allow list without this model."""


def visible_models(key: KeyContext, models: list[ModelEntry]) -> list[ModelEntry]:
    """/v1/models lists only the models this key may use."""
    return models


def reserve_budget(key: KeyContext, model: ModelEntry, prompt_tokens_estimate: int,
                   max_output_tokens: int | None) -> Reservation:
    """Step 7: reserve the worst case (402 insufficient_quota when the key quota or the organisation
    allowance cannot cover it)."""
    return Reservation(key_id=key.id)
