"""Clients that speak the Responses API by default, against the live gateway: the OpenAI Agents SDK running
an agent with a function tool to completion, and LangChain's ChatOpenAI(use_responses_api=True)."""
from __future__ import annotations

import asyncio
import json

import pytest
from agents import Agent, OpenAIResponsesModel, RunConfig, Runner, function_tool
from langchain_openai import ChatOpenAI
from openai import AsyncOpenAI

DEMO_REPLY = "Hello from the Pforte demo model. You wrote 2 tokens"


def responses_requests(gateway, since: int) -> list[dict]:
    """The request-log rows of /v1/responses calls after row id `since`."""
    return gateway.query("SELECT id, status, endpoint, stream FROM request_logs WHERE id > :since "
                         "AND endpoint = 'responses' ORDER BY id", since=since)


def last_log_id(gateway) -> int:
    return gateway.query("SELECT COALESCE(MAX(id), 0) AS id FROM request_logs")[0]["id"]


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


def weather_agent(gateway) -> Agent:
    client = AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key, max_retries=0)
    return Agent(name="Weather", instructions="Use the tool, then answer.", tools=[get_weather],
                 model=OpenAIResponsesModel(model="demo", openai_client=client))


def test_agents_sdk_runs_an_agent_with_a_function_tool_to_completion(gateway):
    since = last_log_id(gateway)
    result = Runner.run_sync(weather_agent(gateway), "What is the weather in Bern", max_turns=4,
                             run_config=RunConfig(tracing_disabled=True))
    assert result.final_output == "The tool answered: \u201cSunny in Bern\u201d."
    kinds = [item.type for item in result.new_items]
    assert kinds == ["tool_call_item", "tool_call_output_item", "message_output_item"]
    assert result.new_items[1].output == "Sunny in Bern"
    rows = responses_requests(gateway, since)
    assert [row["status"] for row in rows] == [200, 200]


def test_agents_sdk_streamed_run(gateway):
    async def run() -> tuple[str, list[str]]:
        streamed = Runner.run_streamed(weather_agent(gateway), "What is the weather in Genf", max_turns=4,
                                       run_config=RunConfig(tracing_disabled=True))
        deltas = []
        async for event in streamed.stream_events():
            if event.type == "raw_response_event" and event.data.type == "response.output_text.delta":
                deltas.append(event.data.delta)
        return streamed.final_output, deltas

    since = last_log_id(gateway)
    final, deltas = asyncio.run(run())
    assert final == "The tool answered: \u201cSunny in Genf\u201d." == "".join(deltas)
    rows = responses_requests(gateway, since)
    assert [(row["status"], bool(row["stream"])) for row in rows] == [(200, True), (200, True)]


@pytest.fixture
def chat_model(gateway):
    return ChatOpenAI(model="demo", base_url=f"{gateway.url}/v1", api_key=gateway.key, use_responses_api=True,
                      max_retries=0)


def test_langchain_responses_api_plain(gateway, chat_model):
    since = last_log_id(gateway)
    message = chat_model.invoke("Hello there")
    assert message.text.startswith(DEMO_REPLY)
    assert message.usage_metadata["input_tokens"] == 2 and message.usage_metadata["output_tokens"] > 10
    assert message.response_metadata["model_name"] == "demo"
    assert [row["status"] for row in responses_requests(gateway, since)] == [200]


def test_langchain_responses_api_streamed(gateway, chat_model):
    since = last_log_id(gateway)
    chunks = list(chat_model.stream("Hello there"))
    text = "".join(chunk.text for chunk in chunks)
    assert text.startswith(DEMO_REPLY) and len(chunks) > 5
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert total.usage_metadata["input_tokens"] == 2
    rows = responses_requests(gateway, since)
    assert [(row["status"], bool(row["stream"])) for row in rows] == [(200, True)]


def test_langchain_tool_call_through_responses(chat_model):
    tool = {"type": "function", "function": {"name": "get_weather", "description": "The weather",
                                             "parameters": {"type": "object", "properties": {
                                                 "city": {"type": "string"}}, "required": ["city"]}}}
    message = chat_model.bind_tools([tool]).invoke("Weather in Basel")
    assert [(call["name"], call["args"]) for call in message.tool_calls] == [("get_weather", {"city": "Basel"})]
    assert json.dumps(message.tool_calls[0]["args"]) == '{"city": "Basel"}'
