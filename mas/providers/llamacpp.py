"""A LangChain chat model over llama-cpp-python: the embedded, offline provider.

It speaks the same `format=<json schema>` keyword as ChatOllama, which
llama.cpp turns into a grammar, so structured agents constrain decoding the
same way on both providers.

llama.cpp runs in an engine process of its own (`mas/providers/llamacpp_engine.py`), started on
first use and checked by a short generation before it takes calls. A native crash
(an illegal instruction on a CPU the build does not fit, a fault in a kernel) ends
that process only: the call fails with one line that names the signal and the way
out, and the next call starts a new engine. The caller's process, a notebook's kernel
or a server with other clients' runs, goes on.

One engine generates one answer at a time, so calls on one model instance are
serialised. Cancelling the awaiting task (a node timeout, a cancelled run) tells the
engine to stop at the next token, so a timed-out call gives the model back at once
instead of holding it, and the next call, until its last token.
"""

from __future__ import annotations

import asyncio
import collections
import json
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
import weakref
from pathlib import Path
from typing import IO, Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from mas.errors import ModelUnavailableError

ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "user"}
# llama.cpp unrolls a string's length bound into nested grammar rules, and parsing
# them recurses once per character: about 1,200 overflows its stack and kills the
# process. Bounds are capped well below that; the bound in the grammar is what stops
# a small model's runaway strings, and pydantic checks (and fits) the real bound after.
GRAMMAR_MAX_CHARS = 500
GRAMMAR_UNSAFE_KEYS = {"pattern"}
ENGINE_SCRIPT = Path(__file__).with_name("llamacpp_engine.py")
ENGINE_START_TIMEOUT_S = 120.0
# After a cancel, the engine answers at its next token; one that does not is stuck.
ENGINE_CANCEL_GRACE_S = 10.0
STDERR_LINES_KEPT = 20


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


class EngineCrashedError(ModelUnavailableError):
    """The embedded model's engine process died, or never became ready."""


class EngineCallError(RuntimeError):
    """The engine refused one call (e.g. a prompt longer than its context); it serves on."""


class GenerationCancelledError(Exception):
    """The call that asked for this generation timed out or was cancelled."""


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "stopped answering"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        meaning = {"SIGILL": " (illegal instruction)", "SIGSEGV": " (segmentation fault)"}
        return f"was killed by {name}{meaning.get(name, '')}"
    return f"exited with status {returncode}"


def crash_advice(returncode: int | None) -> str:
    if returncode == -signal.SIGILL:
        return (
            "this llama.cpp build uses instructions this CPU lacks (a wheel compiled on "
            "another machine?): rebuild it with `CMAKE_ARGS=-DGGML_NATIVE=OFF pip install "
            "--force-reinstall --no-cache-dir llama-cpp-python`, or use --model "
            "ollama:<model> (MAS_MODEL)"
        )
    return "use --model ollama:<model> (or MAS_MODEL) to run on Ollama instead"


def read_replies(stream: IO[str], replies: queue.Queue[dict[str, Any] | None]) -> None:
    for line in stream:
        replies.put(json.loads(line))
    replies.put(None)  # the engine is gone


def read_stderr(stream: IO[str], lines: collections.deque[str]) -> None:
    for line in stream:
        if line.strip():
            lines.append(line.rstrip())


def stop_process(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


class Engine:
    """One engine process, and the threads that read its replies and its stderr."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.process = subprocess.Popen(
            [sys.executable, "-P", str(ENGINE_SCRIPT), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES_KEPT)
        assert self.process.stdout and self.process.stderr
        # The readers hold the queues, not the engine, so a model that is garbage
        # collected takes its engine with it.
        readers = ((read_replies, self.process.stdout, self.replies),
                   (read_stderr, self.process.stderr, self.stderr))  # fmt: skip
        for target, stream, sink in readers:
            threading.Thread(target=target, args=(stream, sink), daemon=True).start()
        self._finalizer = weakref.finalize(self, stop_process, self.process)
        self.ready = self._wait_ready()

    def stop(self) -> None:
        self._finalizer()

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def crashed(self, when: str) -> EngineCrashedError:
        """The one line a person reads when the engine died (or hung: it is stopped)."""
        try:
            code: int | None = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        self.stop()
        last = next((line for line in reversed(self.stderr) if "error" in line.lower()), "")
        detail = f" ({last[:200]})" if last and code is not None and code >= 0 else ""
        model = Path(self.config["model_path"]).name
        return EngineCrashedError(
            f"the embedded model's engine (llama.cpp, {model}) {describe_exit(code)} "
            f"{when}{detail}; {crash_advice(code)}"
        )

    def _wait_ready(self) -> dict[str, Any]:
        try:
            reply = self.replies.get(timeout=ENGINE_START_TIMEOUT_S)
        except queue.Empty:
            reply = None
        if reply is None or "ready" not in reply:
            raise self.crashed("while loading and testing the model")
        ready: dict[str, Any] = reply["ready"]
        return ready

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin
        try:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self.crashed("before it took the call") from None

    def generate(
        self, messages: list[dict[str, str]], params: dict[str, Any], cancelled: threading.Event
    ) -> tuple[list[str], dict[str, Any]]:
        """The pieces of one completion and its end record; stops when `cancelled` is set."""
        request_id = uuid.uuid4().hex
        self.send({"id": request_id, "messages": messages, "params": params})
        pieces: list[str] = []
        cancel_sent_at: float | None = None
        while True:
            if cancelled.is_set() and cancel_sent_at is None:
                self.send({"cancel": request_id})
                cancel_sent_at = time.monotonic()
            if cancel_sent_at and time.monotonic() - cancel_sent_at > ENGINE_CANCEL_GRACE_S:
                self.stop()  # stuck in native code: a new engine serves the next call
                raise GenerationCancelledError()
            try:
                reply = self.replies.get(timeout=0.05)
            except queue.Empty:
                continue
            if reply is None:
                raise self.crashed("while generating")
            if reply.get("id") != request_id:
                continue  # the end of a call given up earlier
            if "piece" in reply:
                pieces.append(reply["piece"])
            elif "error" in reply:
                raise EngineCallError(reply["error"])
            elif reply["end"].get("cancelled"):
                raise GenerationCancelledError()
            else:
                return pieces, reply["end"]


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

    _engine: Engine | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "llamacpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "temperature": self.temperature, "seed": self.seed}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """Traces and prices name the model by its GGUF file (`llamacpp:<stem>`)."""
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_model_name"] = Path(self.model_path).stem
        return params

    def start(self) -> dict[str, Any]:
        """Start the engine (if it is not running) and return what it reported when ready:
        load time, llama.cpp's CPU features. Raises `EngineCrashedError` in one line."""
        with self._lock:
            return self._running().ready

    def close(self) -> None:
        """Stop the engine; the next call starts a new one."""
        with self._lock:
            if self._engine is not None:
                self._engine.stop()
                self._engine = None

    def _running(self) -> Engine:
        if self._engine is None or not self._engine.alive:
            self._engine = Engine(
                {
                    "model_path": self.model_path,
                    "chat_format": self.chat_format,
                    "n_ctx": self.n_ctx,
                    "seed": self.seed,
                }
            )
        return self._engine

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
        schema = kwargs.get("format")
        params = {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "repeat_penalty": self.repeat_penalty,
            "presence_penalty": self.presence_penalty,
            "response_format": (
                {"type": "json_object", "schema": grammar_safe(schema)} if schema else None
            ),
            "stop": stop,
            "seed": self.seed,
        }
        with self._lock:
            if cancelled.is_set():  # given up while waiting for the model
                raise GenerationCancelledError()
            pieces, end = self._running().generate(self._chat_messages(messages), params, cancelled)
        prompt, generated = end["prompt"], end["generated"]
        message = AIMessage(
            content="".join(pieces),
            usage_metadata=UsageMetadata(
                input_tokens=prompt, output_tokens=generated, total_tokens=prompt + generated
            ),
            response_metadata={"finish_reason": end["finish"]},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])
