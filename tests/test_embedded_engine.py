"""The embedded model's engine runs on any x86-64 CPU, and when it cannot, says so.

llama.cpp is native code: on an Intel CPU with AMX its repacked-weight matmul faults in
worker threads (SIGILL), and a wheel built on one machine can use instructions another
lacks. These tests run the real engine (the packaged GGUF through llama-cpp-python) in
child processes, and make real processes die by real signals, so a crash fails one test,
not the suite.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from mas.providers.llamacpp import ENGINE_SCRIPT, ChatLlamaCpp, EngineCrashedError
from mas.providers.models import default_gguf_path, make_model
from tests.support.processes import mas_cli, subprocess_env, wait_for

# Executes `ud2` (an instruction every x86-64 CPU refuses) when llama_cpp is imported:
# the process dies by SIGILL inside native code, as a build that does not fit the CPU
# does. Installed through sitecustomize, so only processes given this path are hit.
FAULTING_LLAMA_CPP = textwrap.dedent(
    """
    import ctypes, importlib.abc, mmap, sys

    class Fault(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "llama_cpp":
                rwx = mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC
                code = mmap.mmap(-1, mmap.PAGESIZE, prot=rwx)
                code.write(b"\\x0f\\x0b")
                ctypes.CFUNCTYPE(None)(ctypes.addressof(ctypes.c_char.from_buffer(code)))()
            return None

    sys.meta_path.insert(0, Fault())
    """
)


@pytest.fixture
def faulting_llama_cpp(tmp_path: Path) -> str:
    """A PYTHONPATH whose processes die by SIGILL when they import llama_cpp."""
    (tmp_path / "sitecustomize.py").write_text(FAULTING_LLAMA_CPP)
    return os.pathsep.join((str(tmp_path), os.environ["PYTHONPATH"]))


def test_the_packaged_gguf_generates_in_a_clean_process() -> None:
    """Loads the packaged GGUF in the engine the product starts, generates a few tokens,
    exits cleanly. Weights stay in plain CPU buffers: the AMX and repack buffer types are
    the path that dies on AMX CPUs, and llama.cpp names them when it considers them."""
    config = {"model_path": str(default_gguf_path()), "n_ctx": 512, "seed": 0, "verbose": True}
    request = {
        "id": "one",
        "messages": [{"role": "user", "content": "Name a colour."}],
        "params": {"max_tokens": 8, "temperature": 0.0},
    }
    done = subprocess.run(
        [sys.executable, "-P", str(ENGINE_SCRIPT), json.dumps(config)],
        input=json.dumps(request) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"the engine died ({done.returncode}): {done.stderr[-2000:]}"
    replies = [json.loads(line) for line in done.stdout.splitlines()]
    assert replies[0]["ready"]["use_extra_bufts"] is False
    text = "".join(r.get("piece", "") for r in replies[1:])
    end = replies[-1]["end"]
    assert text.strip(), "no text was generated"
    assert 0 < end["generated"] <= 8 and end["prompt"] > 0
    buffers = set(re.findall(r"load_tensors: +(\S+) model buffer size", done.stderr))
    assert buffers and buffers <= {"CPU", "CPU_Mapped"}, f"weights in {buffers}"
    assert not re.search(r"AMX|CPU_REPACK", done.stderr), "an extra buffer type was considered"


def test_an_engine_that_dies_at_start_is_named_in_one_line(
    faulting_llama_cpp: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", faulting_llama_cpp)
    with pytest.raises(EngineCrashedError) as raised:
        make_model("llamacpp")
    message = str(raised.value)
    assert "\n" not in message
    assert "killed by SIGILL (illegal instruction) while loading and testing the model" in message
    assert "GGML_NATIVE=OFF" in message and "ollama:<model>" in message


def test_the_cli_refuses_a_run_the_engine_cannot_serve(faulting_llama_cpp: str) -> None:
    done = mas_cli(
        "run", "supervisor", "--model", "llamacpp", "--input", '{"task": "t"}',
        env=subprocess_env(PYTHONPATH=faulting_llama_cpp),
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "SIGILL" in lines[0] and "ollama:<model>" in lines[0], lines
    assert "Traceback" not in done.stdout + done.stderr


async def test_a_crash_mid_generation_fails_one_call_and_the_next_gets_a_new_engine() -> None:
    model = make_model("llamacpp")
    assert isinstance(model, ChatLlamaCpp)
    first = model._engine
    assert first is not None
    story = [HumanMessage("Write a very long story about a lighthouse keeper.")]
    call = asyncio.create_task(model.ainvoke(story))
    await asyncio.sleep(0.5)  # generating
    os.kill(first.process.pid, signal.SIGSEGV)
    with pytest.raises(EngineCrashedError, match=r"killed by SIGSEGV .* while generating"):
        await call
    answer = await model.ainvoke([HumanMessage("Say hi.")])
    assert answer.text.strip()
    assert model._engine is not None and model._engine.process.pid != first.process.pid
    model.close()
    assert first.process.returncode == -signal.SIGSEGV


def test_a_model_that_is_collected_stops_its_engine() -> None:
    model = make_model("llamacpp")
    assert isinstance(model, ChatLlamaCpp) and model._engine is not None
    process = model._engine.process
    del model
    gc.collect()
    assert process.wait(timeout=10) == -signal.SIGKILL


def running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie no one reaped has ended)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_an_engine_whose_caller_died_exits() -> None:
    """The engine reads its requests from its caller: when that pipe closes (the caller
    was killed), the engine ends instead of staying behind."""
    code = textwrap.dedent(
        """
        import os
        from mas.providers.models import make_model
        model = make_model("llamacpp")
        print(model._engine.process.pid, flush=True)
        os._exit(0)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        env=subprocess_env(),
    )  # fmt: skip
    engine = int(done.stdout.split()[0])
    wait_for(lambda: not running(engine), timeout=10, what="the engine to end")
