"""Codex CLI (the `@openai/codex` npm package in tests/node) running `codex exec` against the live gateway
through a custom model provider with `wire_api = "responses"`: one turn with a shell tool call.

The prompt tells the fake upstream to call Codex's `exec_command` tool with `echo …`; Codex runs it, sends
the output back as a function_call_output, and the fake upstream then answers with its fixed sentence.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

CODEX = Path(__file__).resolve().parents[1] / "node" / "node_modules" / ".bin" / "codex"
MARKER = "pforte-codex-ok"
PROMPT = f"Print the marker. [fake call=exec_command arg=echo%20{MARKER}]"


def codex_config(base_url: str) -> str:
    return f"""model = "gpt-test"
model_provider = "pforte"
approval_policy = "never"
sandbox_mode = "read-only"
check_for_update_on_startup = false

[analytics]
enabled = false

[model_providers.pforte]
name = "Pforte"
base_url = "{base_url}"
env_key = "PFORTE_API_KEY"
wire_api = "responses"
"""


def run_codex(gateway, tmp_path: Path) -> subprocess.CompletedProcess:
    assert CODEX.exists(), f"{CODEX} is missing: run `npm install` in tests/node (scripts/test does)"
    home, work = tmp_path / "codex-home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (home / "config.toml").write_text(codex_config(f"{gateway.url}/v1"))
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "CODEX_HOME": str(home),
           "PFORTE_API_KEY": gateway.key, "NO_COLOR": "1"}
    return subprocess.run([str(CODEX), "exec", "--json", "--skip-git-repo-check", "--strict-config", PROMPT],
                          cwd=work, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120)


def test_codex_exec_finishes_a_turn_with_a_tool_call(gateway, tmp_path):
    before = gateway.upstream_stats()["by_path"].get("/v1/chat/completions", 0)
    done = run_codex(gateway, tmp_path)
    assert done.returncode == 0, done.stderr + done.stdout
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    items = [event["item"] for event in events if event["type"] == "item.completed"]
    commands = [item for item in items if item["type"] == "command_execution"]
    assert len(commands) == 1 and MARKER in commands[0]["command"]
    assert commands[0]["exit_code"] == 0 and commands[0]["aggregated_output"].strip() == MARKER
    messages = [item["text"] for item in items if item["type"] == "agent_message"]
    assert messages == ["This is the fake upstream answering your request"]
    assert events[-1]["type"] == "turn.completed" and events[-1]["usage"]["input_tokens"] > 0

    stats = gateway.upstream_stats()
    assert stats["by_path"]["/v1/chat/completions"] - before == 2
    first, second = [r["json"] for r in stats["recent"] if r["path"] == "/v1/chat/completions"][-2:]
    assert first["stream"] is True and "exec_command" in [t["function"]["name"] for t in first["tools"]]
    assert {t["type"] for t in first["tools"]} == {"function"}
    call = second["messages"][-2]["tool_calls"][0]
    assert call["function"] == {"name": "exec_command", "arguments": json.dumps({"cmd": f"echo {MARKER}"})}
    result = second["messages"][-1]
    assert result["role"] == "tool" and result["tool_call_id"] == call["id"] and MARKER in result["content"]
