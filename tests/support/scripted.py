"""A deterministic chat model for testing graph logic: replies come from a script.

Each call is attributed to an agent (by its prompt: the system text, then the user
message, which carries roles and stances), logged (in memory and,
optionally, to a file so calls can be counted across processes), and answered by
that agent's script entry: a reply string, a callable of the messages, an
exception to raise, or a list of those consumed in order.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field

Reply = str | BaseException | Callable[[list[BaseMessage]], str]
Script = dict[str, Reply | Sequence[Reply]]


def supervisor_agent(prompt: str) -> str:
    """Which supervisor agent a prompt (system text, then the user message) belongs to;
    workers by the `[tag]` in their role (so tests can give several workers one script),
    else by their name, both from the user message."""
    if "You are a critic" in prompt:
        judged = re.search(r"Judge the (\w[\w-]*)'s report", prompt)
        return f"critic:{judged.group(1)}" if judged else "critic:synthesis"
    for marker, agent in (
        ("looking again at the plan", "replanner"),
        ("revise a team's final answer", "synthesis_reviser"),
        ("revising your report", "reviser:" + (worker_tag(prompt, "Your role") or "?")),
        ("supervisor's planner", "planner"),
        ("compare the reports", "conflict_detector"),
        ("settle a disagreement", "arbiter"),
        ("write a team's final answer", "synthesizer"),
    ):
        if marker in prompt:
            return agent
    if "stand in for a teammate" in prompt:
        return f"fallback:{worker_tag(prompt, 'Their role') or '?'}"
    return worker_tag(prompt, "Your role") or "unknown"


def worker_tag(prompt: str, label: str) -> str | None:
    """The `[tag]` in a worker's role, or else the worker's name."""
    match = re.search(rf"{label} \(([\w-]+)\): ([^\n]*)", prompt)
    if match is None:
        return None
    tag = re.search(r"\[(\w+)\]", match.group(2))
    return tag.group(1) if tag else match.group(1)


class ScriptedChatModel(BaseChatModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    script: dict[str, Any]
    classify: Callable[[str], str] = supervisor_agent
    delays: dict[str, float] = Field(default_factory=dict)
    log_path: str | None = None
    # Every call's start and end with its thread and process, for crash tests that must
    # tell a call in flight at a kill from one that had finished.
    trace_path: str | None = None
    calls: list[str] = Field(default_factory=list)
    # each call's agent and prompt (system text, then user message), for asserting what
    # an agent was told
    prompts: list[tuple[str, str]] = Field(default_factory=list)
    # calls under way at once, now and at the most (a run's concurrency cap shows here)
    in_flight: int = 0
    peak_in_flight: int = 0
    steps: list[tuple[str, int | None]] = Field(default_factory=list)
    positions: dict[str, int] = Field(default_factory=dict)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _agent(self, messages: list[BaseMessage]) -> str:
        """Classify the call and record it when it starts, so calls cut short by a
        timeout or a kill count too."""
        system = next((m.text for m in messages if m.type == "system"), "")
        user = next((m.text for m in messages if m.type == "human"), "")
        prompt = f"{system}\n\n{user}"
        agent = self.classify(prompt)
        self.prompts.append((agent, prompt))
        self._record(agent)
        return agent

    def _record(self, agent: str) -> None:
        self.calls.append(agent)
        if self.log_path:
            with Path(self.log_path).open("a") as log:
                log.write(f"{agent}\n")
                log.flush()
                os.fsync(log.fileno())

    def _trace(self, event: str, agent: str, metadata: dict[str, Any]) -> None:
        """One line per call start and end, fsynced, so calls cut short by a kill count:
        the agent, its thread, this process, the time, and the top-level LangGraph task
        that made the call (a task whose writes were saved must not call again)."""
        if self.trace_path:
            with Path(self.trace_path).open("a") as log:
                thread = metadata.get("thread_id", "-")
                namespace = str(metadata.get("langgraph_checkpoint_ns", ""))
                task = namespace.split("|")[0].partition(":")[2] or "-"
                log.write(f"{event} {agent} {thread} {os.getpid()} {time.time():.3f} {task}\n")
                log.flush()
                os.fsync(log.fileno())

    def _next_reply(self, agent: str, messages: list[BaseMessage]) -> str:
        entry = self.script.get(agent, self.script.get("*"))
        if entry is None:
            raise KeyError(f"the script has no reply for agent '{agent}'")
        if isinstance(entry, list | tuple):
            index = self.positions.get(agent, 0)
            self.positions[agent] = index + 1
            entry = entry[min(index, len(entry) - 1)]
        if isinstance(entry, BaseException):
            raise entry
        if callable(entry):
            return str(entry(messages))
        return entry if isinstance(entry, str) else json.dumps(entry)

    def _result(self, text: str, messages: list[BaseMessage]) -> ChatResult:
        prompt_chars = sum(len(m.text) for m in messages)
        usage = UsageMetadata(
            input_tokens=prompt_chars // 4,
            output_tokens=len(text) // 4,
            total_tokens=prompt_chars // 4 + len(text) // 4,
        )
        return ChatResult(
            generations=[ChatGeneration(message=AIMessage(text, usage_metadata=usage))]
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        agent = self._agent(messages)
        return self._result(self._next_reply(agent, messages), messages)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        agent = self._agent(messages)
        metadata = (run_manager.metadata or {}) if run_manager else {}
        self.steps.append((agent, metadata.get("langgraph_step")))
        self._trace("start", agent, metadata)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if delay := self.delays.get(agent, self.delays.get("*", 0.0)):
                await asyncio.sleep(delay)
            result = self._result(self._next_reply(agent, messages), messages)
        finally:
            self.in_flight -= 1
        self._trace("end", agent, metadata)
        return result
