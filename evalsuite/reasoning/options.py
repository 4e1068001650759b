"""The reasoning suite's options (``xplus-eval reasoning`` flags, ``all``'s ``--reasoning-*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from xplus_release.config import AtLeastOne, Config


class ReasoningOptions(Config):
    section = "reasoning"

    tasks: str | None = Field(None, description="comma-separated tasks (default: all that can run)")
    thinking: Literal["on", "off"] = Field("on", description="Qwen3 thinking mode for reasoning (Qwen3's own default: on)")
    max_tokens: AtLeastOne | None = Field(None, description=(
        "cap generated tokens per item (default: each OpenCompass dataset's own)"))
    judge_endpoint: str | None = Field(None, description=(
        "OpenAI-compatible server of the LLM judge that AIME2025 and OlymMath need"))
    judge_model: str | None = Field(None, description="the judge's served model name")
    judge_api_key: str | None = Field(None, description="API key of the judge endpoint")
    tokenizer: str | None = Field(None, description=(
        "tokenizer folder OpenCompass counts prompt tokens with (default: the model's)"))
    code_memory_gb: float = Field(16.0, gt=0, description=(
        "address-space limit (GB) per process while scoring model-written code"))
    code_cpu_seconds: AtLeastOne = Field(3600, description="CPU-time limit per process while scoring")
    score_timeout: float = Field(14400.0, gt=0, description=(
        "wall-clock limit in seconds of the whole OpenCompass run, generation and scoring"))
    in_process: bool | None = Field(None, description=(
        "run OpenCompass's per-dataset tasks in its main process: faster start, but one failing dataset stops "
        "the run (default: on with --limit, off otherwise)"))

    @model_validator(mode="after")
    def _judge_needs_a_model(self) -> ReasoningOptions:
        if self.judge_endpoint and not self.judge_model:
            raise ValueError("--judge-endpoint needs --judge-model (the judge's served model name)")
        return self
