"""The embedded model's engine: llama.cpp in a process of its own.

llama.cpp is native code, and native code can die by a signal (an illegal instruction
on a CPU it was not built for, a fault in a kernel such as the AMX matmul). In the
caller's process that kills the CLI, a notebook's kernel or a server with every other
client's run; here it ends one process, which the caller sees as a failed call, names
in one line, and replaces on the next call.

This file is run as a script (`python -P llamacpp_engine.py CONFIG`) and imports only
the standard library and llama_cpp, so the engine starts without the application.
The protocol is JSON lines: requests on stdin, replies on the descriptor stdout had when
the process started (C code that prints writes to stderr instead, so it cannot corrupt
a reply).

    ready:    {"ready": {"load_s", "system_info", "use_extra_bufts"}}   once, after a self-test
    request:  {"id", "messages", "params"}      params: max_tokens, temperature, ...
    cancel:   {"cancel": id}                    stop at the next token
    replies:  {"id", "piece"}* then {"id", "end": {"finish", "prompt", "generated"}}
              or {"id", "end": {"cancelled": true}} or {"id", "error": "..."}
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from typing import IO, Any

# Weights stay in llama.cpp's plain CPU buffers: no "extra buffer types", the repacked
# layouts (AMX tiles, CPU_REPACK) a build may add at run time. On Intel CPUs with AMX,
# llama.cpp's AMX matmul faults in its OpenMP worker threads (no valid tile config), and
# whether a build has that path depends on the machine it was compiled on, which pip's
# wheel cache hides. Turning the buffer types off at load time holds for every build.
USE_EXTRA_BUFTS = False
SELF_TEST_PROMPT = "The capital of France is"


def load(config: dict[str, Any]) -> Any:
    """The model, loaded with the weights in plain CPU buffers."""
    import llama_cpp
    from llama_cpp import Llama

    low_level = llama_cpp.llama_cpp
    defaults = low_level.llama_model_default_params

    def model_params() -> Any:
        params = defaults()
        params.use_extra_bufts = USE_EXTRA_BUFTS
        return params

    # llama-cpp-python's Llama has no argument for use_extra_bufts: it takes the defaults
    # from this function. This process loads one model, so replacing it here is local.
    low_level.llama_model_default_params = model_params
    try:
        return Llama(
            model_path=config["model_path"],
            chat_format=config.get("chat_format"),
            n_ctx=config["n_ctx"],
            seed=config["seed"],
            verbose=config.get("verbose", False),
        )
    finally:
        low_level.llama_model_default_params = defaults


def self_test(llama: Any) -> None:
    """One prompt through the matmul kernels, batched and single-token: the calls that
    fault first on a CPU the build does not fit."""
    llama(SELF_TEST_PROMPT, max_tokens=2, temperature=0.0)
    llama.reset()


class Channel:
    """Replies on the protocol descriptor; requests and cancels read by a thread."""

    def __init__(self, replies: IO[str]) -> None:
        self.replies = replies
        self.requests: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.cancelled: set[str] = set()
        self.lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        self.replies.write(json.dumps(message) + "\n")
        self.replies.flush()

    def read(self, source: IO[str]) -> None:
        for line in source:
            message = json.loads(line)
            if "cancel" in message:
                with self.lock:
                    self.cancelled.add(message["cancel"])
            else:
                self.requests.put(message)
        self.requests.put(None)  # no more requests: answer those read, then end

    def is_cancelled(self, request_id: str) -> bool:
        with self.lock:
            return request_id in self.cancelled


def complete(llama: Any, request: dict[str, Any], channel: Channel) -> None:
    """Stream one chat completion, token by token, stopping when it is cancelled."""
    request_id = request["id"]
    params = request["params"]
    pieces = 0
    finish = None
    chunks = llama.create_chat_completion(messages=request["messages"], stream=True, **params)
    try:
        for chunk in chunks:
            if channel.is_cancelled(request_id):
                channel.send({"id": request_id, "end": {"cancelled": True}})
                return
            choice = chunk["choices"][0]
            if piece := choice["delta"].get("content"):
                pieces += 1
                channel.send({"id": request_id, "piece": piece})
            finish = choice.get("finish_reason") or finish
    finally:
        chunks.close()  # stops the generation
    # A stream reports no usage: a piece is a token, and the context holds the prompt
    # and every generated token but the last.
    generated = params["max_tokens"] if finish == "length" else pieces
    prompt = max(llama.n_tokens + 1 - generated, 0)
    channel.send(
        {"id": request_id, "end": {"finish": finish, "prompt": prompt, "generated": generated}}
    )


def serve(config: dict[str, Any]) -> None:
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # anything native code prints goes to stderr, never into a reply
    channel = Channel(replies)
    started = time.perf_counter()
    llama = load(config)
    self_test(llama)
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode(errors="replace").strip()
    load_s = round(time.perf_counter() - started, 3)
    channel.send(
        {"ready": {"load_s": load_s, "system_info": info, "use_extra_bufts": USE_EXTRA_BUFTS}}
    )
    threading.Thread(target=channel.read, args=(sys.stdin,), daemon=True).start()
    while (request := channel.requests.get()) is not None:
        try:
            complete(llama, request, channel)
        except BrokenPipeError:
            return  # the caller is gone (killed): nobody reads the answer
        except Exception as error:  # the call fails; the engine serves the next one
            channel.send({"id": request["id"], "error": f"{type(error).__name__}: {error}"})
        with channel.lock:
            channel.cancelled.discard(request["id"])


if __name__ == "__main__":
    serve(json.loads(sys.argv[1]))
