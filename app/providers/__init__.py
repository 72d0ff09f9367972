"""Upstream adapters, one module per connection kind, all with the interface in base.py.

`provider_for(kind)` returns the shared adapter of a kind; adapters that talk HTTP share one pooled
transport.
"""
from __future__ import annotations

from app.providers.anthropic import AnthropicProvider
from app.providers.azure import AzureProvider
from app.providers.base import Provider, UpstreamError, upstream_failed
from app.providers.demo import DemoProvider
from app.providers.openai_compatible import OpenAICompatibleProvider
from app.providers.response import AnswerLimits
from app.providers.transport import HttpTransport

# connection kind → adapter class
REGISTRY: dict[str, type[Provider]] = {
    "openai": OpenAICompatibleProvider,
    "azure": AzureProvider,
    "anthropic": AnthropicProvider,
    "demo": DemoProvider,
}

_providers: dict[str, Provider] = {}
_transport = None
_pool_size = 256
_ca_bundle: str | None = None
_limits = AnswerLimits()


def configure(pool_size: int, ca_bundle: str | None = None, limits: AnswerLimits = AnswerLimits()) -> None:
    """Set the per-connection pool size, the extra CA bundle and the caps on answers
    (PFORTE_UPSTREAM_POOL_SIZE, PFORTE_UPSTREAM_CA_BUNDLE, PFORTE_UPSTREAM_MAX_*_BYTES); a transport made
    with other settings is dropped."""
    global _pool_size, _ca_bundle, _limits, _transport
    pool_size, ca_bundle = max(1, int(pool_size)), ca_bundle or None
    if (pool_size, ca_bundle, limits) != (_pool_size, _ca_bundle, _limits) and _transport is not None:
        close_all()
        _transport = None
    _pool_size, _ca_bundle, _limits = pool_size, ca_bundle, limits


def shared_transport():
    """The pooled HTTP transport shared by the HTTP-based adapters. (Not named `transport`: importing the
    submodule app.providers.transport would replace a package attribute of that name.)"""
    global _transport
    if _transport is None:
        _transport = HttpTransport(_pool_size, _ca_bundle, _limits)
    return _transport


def provider_for(kind: str) -> Provider:
    provider = _providers.get(kind)
    if provider is not None:
        return provider
    cls = REGISTRY.get(kind)
    if cls is None:
        raise upstream_failed(f"The connection kind {kind!r} is not supported.")
    provider = cls(shared_transport())
    _providers[kind] = provider
    return provider


def close_all() -> None:
    for provider in _providers.values():
        provider.close()
    _providers.clear()
    if _transport is not None:
        _transport.close()


__all__ = ["AnswerLimits", "Provider", "UpstreamError", "provider_for", "configure", "shared_transport", "close_all",
           "REGISTRY"]
