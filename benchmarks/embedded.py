"""The embedded model's speed before and after the portability fix, in one run.

    python -m benchmarks.embedded [--repeats 5] [--tokens 128]

Rows, each measured in a process of its own (so a row that dies by a signal, as the
"before" row does on an Intel CPU with AMX, is reported as such):

- before: llama.cpp loaded in process with its extra buffer types on (weights repacked
  into AMX tiles or CPU_REPACK layouts where the build and CPU have them);
- after, in process: the same with them off, the way the engine loads the model;
- after, engine: the product's path, ChatLlamaCpp talking to its engine process.

Prompt and generation rates come from llama.cpp's own counters; "chat call" is the
wall time of one chat completion of the same prompt (greedy, so every row generates the
same tokens), which for the engine includes the pipe between the two processes.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

from benchmarks.common import console, machine, print_table, uptime

PROMPT = (
    "Summarise the trade-offs between building a job queue in-house and using "
    "PostgreSQL's SKIP LOCKED for a team of five engineers. " * 6
)
CHAT = [{"role": "user", "content": "Write a short story about a lighthouse keeper."}]


def measure_in_process(extra_bufts: bool, repeats: int, tokens: int) -> dict[str, Any]:
    import llama_cpp

    from mas.providers import llamacpp_engine
    from mas.providers.models import default_gguf_path

    llamacpp_engine.USE_EXTRA_BUFTS = extra_bufts
    started = time.perf_counter()
    llama = llamacpp_engine.load({"model_path": str(default_gguf_path()), "n_ctx": 2048, "seed": 0})
    load_s = time.perf_counter() - started
    prompt = llama.tokenize(PROMPT.encode())
    prompt_rates, generation_rates, chat_s = [], [], []
    for _ in range(repeats):
        llama.reset()
        llama_cpp.llama_perf_context_reset(llama._ctx.ctx)
        for count, _token in enumerate(llama.generate(prompt, temp=0.0), start=1):
            if count == tokens:
                break
        perf = llama_cpp.llama_perf_context(llama._ctx.ctx)
        prompt_rates.append(perf.n_p_eval / perf.t_p_eval_ms * 1000)
        generation_rates.append(perf.n_eval / perf.t_eval_ms * 1000)
        started = time.perf_counter()
        chunks = llama.create_chat_completion(
            messages=CHAT, max_tokens=tokens, temperature=0.0, seed=0, stream=True
        )
        generated = sum(1 for chunk in chunks if chunk["choices"][0]["delta"].get("content"))
        chat_s.append(time.perf_counter() - started)
    return {
        "load_s": load_s,
        "prompt_tps": statistics.median(prompt_rates),
        "generation_tps": statistics.median(generation_rates),
        "chat_s": statistics.median(chat_s),
        "chat_tokens": generated,
        "prompt_tokens": len(prompt),
    }


def measure_engine(repeats: int, tokens: int) -> dict[str, Any]:
    from langchain_core.messages import HumanMessage

    from mas.providers.llamacpp import ChatLlamaCpp
    from mas.providers.models import default_gguf_path

    model = ChatLlamaCpp(
        model_path=str(default_gguf_path()), n_ctx=2048, max_tokens=tokens, temperature=0.0
    )
    started = time.perf_counter()
    model.start()
    start_s = time.perf_counter() - started
    chat_s, generated = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        answer = model.invoke([HumanMessage(CHAT[0]["content"])])
        chat_s.append(time.perf_counter() - started)
        generated = (answer.usage_metadata or {}).get("output_tokens", 0)
    model.close()
    return {"load_s": start_s, "chat_s": statistics.median(chat_s), "chat_tokens": generated}


def in_child(mode: str, repeats: int, tokens: int) -> dict[str, Any] | str:
    """One row's numbers from a process of its own, or how that process died."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.embedded", "--child", mode,
         "--repeats", str(repeats), "--tokens", str(tokens)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if done.returncode < 0:
        return f"crashed ({signal.Signals(-done.returncode).name})"
    if done.returncode != 0:
        return f"failed: {done.stderr.strip().splitlines()[-1]}"
    row: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return row


def main(repeats: int, tokens: int) -> None:
    modes = [
        ("before: in process, extra buffer types on", "before"),
        ("after: in process, extra buffer types off", "after"),
        ("after: engine process (ChatLlamaCpp)", "engine"),
    ]
    results = {mode: in_child(mode, repeats, tokens) for _, mode in modes}
    before = results["before"]
    rows = []
    for label, mode in modes:
        result = results[mode]
        if isinstance(result, str):
            rows.append([label, result, "", "", "", ""])
            continue
        chat_ratio = (
            f"{result['chat_s'] / before['chat_s']:.2f}" if isinstance(before, dict) else "n/a"
        )
        rows.append(
            [
                label,
                f"{result['load_s']:.2f}",
                f"{result['prompt_tps']:.0f}" if "prompt_tps" in result else "—",
                f"{result['generation_tps']:.0f}" if "generation_tps" in result else "—",
                f"{result['chat_s'] * 1000:.0f} ({result['chat_tokens']} tokens)",
                chat_ratio,
            ]
        )
    print_table(
        f"Embedded model (SmolLM2-135M-Instruct Q4_1), medians of {repeats}; {machine()}",
        ["path", "load / start s", "prompt tok/s", "generation tok/s", "chat call ms",
         "chat vs before"],
        rows,
    )  # fmt: skip
    console.print(f"[dim]{uptime()}[/dim]")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--child", choices=["before", "after", "engine"])
    args = parser.parse_args()
    if args.child == "engine":
        print(json.dumps(measure_engine(args.repeats, args.tokens)))
    elif args.child:
        print(json.dumps(measure_in_process(args.child == "before", args.repeats, args.tokens)))
    else:
        main(args.repeats, args.tokens)
