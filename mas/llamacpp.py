"""A LangChain chat model over llama-cpp-python: the embedded, offline provider.

It speaks the same `format=<json schema>` keyword as ChatOllama, which
llama.cpp turns into a grammar, so structured agents constrain decoding the
same way on both providers. One llama.cpp context is not safe to share between
threads, so calls on one model instance are serialised.
"""

from __future__ import annotations

import threading
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "user"}
# llama.cpp unrolls string length bounds into grammar rules, and a few hundred
# characters exceed its limits (it aborts the process); lengths are checked by
# pydantic after decoding instead, and max_tokens bounds the reply.
GRAMMAR_UNSAFE_KEYS = {"maxLength", "minLength", "pattern"}


def grammar_safe(schema: Any) -> Any:
    """The JSON schema without the constraints llama.cpp's grammar cannot afford."""
    if isinstance(schema, dict):
        return {k: grammar_safe(v) for k, v in schema.items() if k not in GRAMMAR_UNSAFE_KEYS}
    if isinstance(schema, list):
        return [grammar_safe(item) for item in schema]
    return schema


class ChatLlamaCpp(BaseChatModel):
    model_path: str
    chat_format: str | None = None
    fold_system: bool = False
    """Prepend system text to the first user turn, for templates (Gemma's) with no system role."""
    n_ctx: int = 4096
    max_tokens: int = 512
    temperature: float = 0.2
    repeat_penalty: float = 1.1
    seed: int = 0

    _llama: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "llamacpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "temperature": self.temperature}

    def _load(self) -> Any:
        if self._llama is None:
            from llama_cpp import Llama

            self._llama = Llama(
                model_path=self.model_path,
                chat_format=self.chat_format,
                n_ctx=self.n_ctx,
                seed=self.seed,
                verbose=False,
            )
        return self._llama

    def _chat_messages(self, messages: list[BaseMessage]) -> list[dict[str, str]]:
        chat = [{"role": ROLES.get(m.type, "user"), "content": m.text} for m in messages]
        if not self.fold_system:
            return chat
        system = "\n\n".join(m["content"] for m in chat if m["role"] == "system")
        chat = [m for m in chat if m["role"] != "system"]
        if system and chat and chat[0]["role"] == "user":
            chat[0] = {"role": "user", "content": f"{system}\n\n{chat[0]['content']}"}
        elif system:
            chat.insert(0, {"role": "user", "content": system})
        return chat

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        schema = kwargs.get("format")
        response_format = (
            {"type": "json_object", "schema": grammar_safe(schema)} if schema else None
        )
        with self._lock:
            out = self._load().create_chat_completion(
                messages=self._chat_messages(messages),
                max_tokens=self.max_tokens,
                temperature=self.temperature,
                repeat_penalty=self.repeat_penalty,
                response_format=response_format,
                stop=stop,
                seed=self.seed,
            )
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        message = AIMessage(
            content=choice["message"].get("content") or "",
            usage_metadata=UsageMetadata(
                input_tokens=usage.get("prompt_tokens", 0),
                output_tokens=usage.get("completion_tokens", 0),
                total_tokens=usage.get("total_tokens", 0),
            ),
            response_metadata={"finish_reason": choice.get("finish_reason")},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])
