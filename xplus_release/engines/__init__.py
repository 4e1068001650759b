"""Engines that run a model, imported on use so that heavy ones (vLLM) load only when needed."""

from __future__ import annotations

from xplus_release.engines.base import ChatEngine, Generation, Messages, SamplingConfig


def open_engine(model: str, endpoint: str | None = None, api_key: str | None = None, **engine_args) -> ChatEngine:
    """An engine for ``model``: a client of ``endpoint`` if one is given, else vLLM in this process."""
    if endpoint:
        from xplus_release.engines.openai_endpoint import OpenAIEndpointEngine

        return OpenAIEndpointEngine(endpoint, model=model, api_key=api_key, **engine_args)
    from xplus_release.engines.vllm_local import VLLMEngine
    from xplus_release.registry import resolve_model

    return VLLMEngine(resolve_model(model, engine_args.pop("max_model_len", None)), **engine_args)


__all__ = ["ChatEngine", "Generation", "Messages", "SamplingConfig", "open_engine"]
