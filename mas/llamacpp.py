"""A LangChain chat model over llama-cpp-python: the embedded, offline provider.

It speaks the same `format=<json schema>` keyword as ChatOllama, which
llama.cpp turns into a grammar, so structured agents constrain decoding the
same way on both providers. One llama.cpp context is not safe to share between
threads, so calls on one model instance are serialised.

Generation is synchronous C code in a worker thread, which cancelling the awaiting
task does not stop. So an async call hands the thread a flag that a node timeout or a
cancelled run sets, and the generation checks it at every token (and before it starts,
if it was still waiting for the model): a timed-out call gives the model back at once
instead of holding it, and the next call, until its last token.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "user"}
# llama.cpp unrolls a string's length bound into nested grammar rules, and parsing
# them recurses once per character: about 1,200 overflows its stack and kills the
# process. Bounds are capped well below that; the bound in the grammar is what stops
# a small model's runaway strings, and pydantic checks (and fits) the real bound after.
GRAMMAR_MAX_CHARS = 500
GRAMMAR_UNSAFE_KEYS = {"pattern"}


def grammar_safe(schema: Any) -> Any:
    """The JSON schema with the constraints llama.cpp's grammar can afford."""
    if isinstance(schema, dict):
        return {
            k: min(v, GRAMMAR_MAX_CHARS) if k in ("maxLength", "minLength") else grammar_safe(v)
            for k, v in schema.items()
            if k not in GRAMMAR_UNSAFE_KEYS
        }
    if isinstance(schema, list):
        return [grammar_safe(item) for item in schema]
    return schema


class ChatLlamaCpp(BaseChatModel):
    model_path: str
    chat_format: str | None = None
    """llama-cpp-python's chat format; None uses the chat template the GGUF carries."""
    n_ctx: int = 4096
    max_tokens: int = 512
    temperature: float = 0.2
    repeat_penalty: float = 1.1
    presence_penalty: float = 0.0
    seed: int = 0

    _llama: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "llamacpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "temperature": self.temperature, "seed": self.seed}

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
        return [{"role": ROLES.get(m.type, "user"), "content": m.text} for m in messages]

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._complete(messages, stop, threading.Event(), **kwargs)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        cancelled = threading.Event()
        try:
            return await asyncio.to_thread(self._complete, messages, stop, cancelled, **kwargs)
        finally:
            cancelled.set()  # a timeout or a cancelled run: stop at the next token

    def _complete(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        cancelled: threading.Event,
        **kwargs: Any,
    ) -> ChatResult:
        """Generate, streaming token by token so a cancelled call can stop between two."""
        schema = kwargs.get("format")
        response_format = (
            {"type": "json_object", "schema": grammar_safe(schema)} if schema else None
        )
        pieces: list[str] = []
        finish = None
        with self._lock:
            if cancelled.is_set():  # given up while waiting for the model
                raise GenerationCancelledError()
            llama = self._load()
            chunks = llama.create_chat_completion(
                messages=self._chat_messages(messages),
                max_tokens=self.max_tokens,
                temperature=self.temperature,
                repeat_penalty=self.repeat_penalty,
                presence_penalty=self.presence_penalty,
                response_format=response_format,
                stop=stop,
                seed=self.seed,
                stream=True,
            )
            try:
                for chunk in chunks:
                    if cancelled.is_set():
                        raise GenerationCancelledError()
                    choice = chunk["choices"][0]
                    if piece := choice["delta"].get("content"):
                        pieces.append(piece)
                    finish = choice.get("finish_reason") or finish
            finally:
                chunks.close()  # stops the generation
            # A stream reports no usage: a piece is a token, and the context holds the
            # prompt and every generated token but the last.
            generated = self.max_tokens if finish == "length" else len(pieces)
            prompt = max(llama.n_tokens + 1 - generated, 0)
        message = AIMessage(
            content="".join(pieces),
            usage_metadata=UsageMetadata(
                input_tokens=prompt, output_tokens=generated, total_tokens=prompt + generated
            ),
            response_metadata={"finish_reason": finish},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


class GenerationCancelledError(Exception):
    """The call that asked for this generation timed out or was cancelled."""
