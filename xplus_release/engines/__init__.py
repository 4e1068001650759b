"""Engines that run a model, imported on use so that heavy ones (vLLM) load only when needed."""

from __future__ import annotations

import importlib

from xplus_release.engines.base import ChatEngine, Generation, Messages, SamplingConfig

ENGINES: dict[str, str] = {
    "vllm": "xplus_release.engines.vllm_local:VLLMEngine",
    "openai": "xplus_release.engines.openai_endpoint:OpenAIEndpointEngine",
}


def engine_class(kind: str) -> type[ChatEngine]:
    from xplus_release.errors import ConfigError

    if kind not in ENGINES:
        raise ConfigError(f"unknown engine {kind!r}; choose one of: {', '.join(ENGINES)}")
    module, _, attr = ENGINES[kind].partition(":")
    return getattr(importlib.import_module(module), attr)


def open_engine(model: str, endpoint: str | None = None, api_key: str | None = None, **engine_args) -> ChatEngine:
    """An engine for ``model``: a client of ``endpoint`` if one is given, else vLLM in this process."""
    if endpoint:
        return engine_class("openai")(endpoint, model=model, api_key=api_key, **engine_args)
    from xplus_release.registry import resolve_model

    return engine_class("vllm")(resolve_model(model, engine_args.pop("max_model_len", None)), **engine_args)


__all__ = ["ENGINES", "ChatEngine", "Generation", "Messages", "SamplingConfig", "engine_class", "open_engine"]
