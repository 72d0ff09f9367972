"""Request options that cost extra or keep data at the provider, which go upstream only when the connection
allows them (`UpstreamTarget.allow_passthrough`, off by default).

Stripped: `service_tier` (priority processing is billed at a higher rate), `store` (the provider keeps the
prompt and answer in the organisation's account), OpenAI's `web_search_options` (billed per search) and the
client's `anthropic-beta` header (betas switch on paid features such as the 1M context). Refused with 400:
Anthropic tools that run on Anthropic's servers (web search, web fetch, code execution, billed per use)
and `mcp_servers`, because leaving them out silently would answer a different question. Everything else
passes, the sampling options that vLLM, Ollama or llama.cpp know included (`top_k`, `min_p`,
`repetition_penalty`, `guided_json`, …).
"""
from __future__ import annotations

from app.api_errors import ApiError
from app.providers.base import UpstreamTarget

OPENAI_STRIPPED = ("service_tier", "store", "web_search_options")
ANTHROPIC_STRIPPED = ("service_tier",)
# Anthropic-defined tools that the client itself runs (no per-use charge); every other `type` but
# "custom" is a server tool.
CLIENT_TOOL_PREFIXES = ("bash_", "text_editor_", "computer_", "memory_")


def openai_body(target: UpstreamTarget, body: dict) -> dict:
    """The body without the stripped options (the same dict when there is nothing to strip). `store: false`
    stays: it asks the provider to keep nothing, and the Responses API keeps answers unless told so."""
    if target.allow_passthrough or not any(_stripped(name, value) for name, value in body.items()):
        return body
    return {name: value for name, value in body.items() if not _stripped(name, value)}


def _stripped(name: str, value) -> bool:
    return name in OPENAI_STRIPPED and not (name == "store" and value is False)


def anthropic_request(target: UpstreamTarget, body: dict, beta: str | None) -> tuple[dict, str | None]:
    """The Messages body and anthropic-beta header that may go upstream; 400 for server tools."""
    if target.allow_passthrough:
        return body, beta
    tools = body.get("tools")
    if isinstance(tools, list):
        for index, tool in enumerate(tools):
            kind = tool.get("type") if isinstance(tool, dict) else None
            if isinstance(kind, str) and kind != "custom" and not kind.startswith(CLIENT_TOOL_PREFIXES):
                raise _refused(f"The tool type '{kind[:64]}' runs on the provider's servers and is billed per use; "
                               "this model's connection does not allow it.", f"tools[{index}]")
    if body.get("mcp_servers"):
        raise _refused("MCP servers are not allowed on this model's connection.", "mcp_servers")
    if any(name in body for name in ANTHROPIC_STRIPPED):
        body = {name: value for name, value in body.items() if name not in ANTHROPIC_STRIPPED}
    return body, None


def _refused(message: str, param: str) -> ApiError:
    return ApiError(400, "invalid_request_error", "invalid_request", message, param=param)
