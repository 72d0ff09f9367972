"""Azure OpenAI deployments: the deployment URL, an `api-version` query parameter, an `api-key` header.

The base URL is the resource endpoint (`https://NAME.openai.azure.com`); the model's upstream name is the
deployment. A base URL that already names a deployment (`…/openai/deployments/NAME`) is used as it is,
and one ending in `/openai/v1` uses Azure's newer OpenAI-style API (the model goes in the body).

Azure's Responses API is not per deployment: `POST {resource}/openai/responses?api-version=…`, or
`{resource}/openai/v1/responses` for a base URL ending in `/openai/v1`, with the deployment as `model` in
the body. The api-version is the connection's when it has the Responses API (2025-03-01-preview or later),
else 2025-04-01-preview.
"""
from __future__ import annotations

from urllib.parse import quote

from app.providers.base import UpstreamTarget
from app.providers.openai_compatible import PATHS, OpenAICompatibleProvider

DEFAULT_API_VERSION = "2024-10-21"
RESPONSES_API_VERSION = "2025-04-01-preview"  # for Responses calls when the connection's api-version is older


class AzureProvider(OpenAICompatibleProvider):
    kind = "azure"

    def url(self, target: UpstreamTarget, endpoint: str, model: str) -> str:
        return deployment_url(target, model, endpoint)

    def headers(self, target: UpstreamTarget) -> dict[str, str]:
        return {"api-key": target.api_key} if target.api_key else {}


def deployment_url(target: UpstreamTarget, deployment: str, endpoint: str) -> str:
    base = target.base_url.rstrip("/")
    path = PATHS[endpoint]
    if base.endswith("/openai/v1"):
        return base + path
    if endpoint == "responses":
        resource = base.split("/openai/", 1)[0]
        version = target.api_version if (target.api_version or "") >= "2025-03-01" else RESPONSES_API_VERSION
        return f"{resource}/openai{path}?api-version={quote(version, safe='')}"
    if "/openai/deployments/" not in base:
        base = f"{base}/openai/deployments/{quote(deployment, safe='')}"
    return f"{base}{path}?api-version={quote(target.api_version or DEFAULT_API_VERSION, safe='')}"
