"""Which client endpoints each key scope may call (DESIGN §5 step 5).

full: every client endpoint. llm: the inference endpoints and the model list. read: GET requests only.
An unknown scope allows nothing (fail closed).
"""
from __future__ import annotations

SCOPES = ("full", "llm", "read")
INFERENCE_ENDPOINTS = frozenset({"chat", "completions", "embeddings", "messages"})
LLM_ENDPOINTS = INFERENCE_ENDPOINTS | {"models"}
READ_METHODS = frozenset({"GET", "HEAD"})


def scope_allows(scope: str, endpoint: str, method: str) -> bool:
    """True when a key of this scope may call `endpoint` (chat, completions, embeddings, messages, models)
    with this HTTP method."""
    if scope == "full":
        return True
    if scope == "llm":
        return endpoint in LLM_ENDPOINTS
    if scope == "read":
        return method.upper() in READ_METHODS
    return False
