"""Which client endpoints each key scope may call (step 5 of the request pipeline).

full: every client endpoint. llm: the inference endpoints and the model list. read: GET requests only.
An unknown scope allows nothing (fail closed). The Responses API (`responses`) is an inference endpoint
like chat, which it is translated to: a key that may chat may call it, and a read-only key may not.
"""
from __future__ import annotations

SCOPES = ("full", "llm", "read")
INFERENCE_ENDPOINTS = frozenset({"chat", "completions", "embeddings", "messages", "responses"})
LLM_ENDPOINTS = INFERENCE_ENDPOINTS | {"models"}
READ_METHODS = frozenset({"GET", "HEAD"})


def scope_allows(scope: str, endpoint: str, method: str) -> bool:
    """True when a key of this scope may call `endpoint` (chat, completions, embeddings, messages, responses,
    models) with this HTTP method."""
    if scope == "full":
        return True
    if scope == "llm":
        return endpoint in LLM_ENDPOINTS
    if scope == "read":
        return method.upper() in READ_METHODS
    return False
