"""The multilingual suite's options (``xplus-eval multilingual`` flags, ``all``'s ``--multilingual-*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from xplus_release.config import AtLeastOne, Config


class MultilingualOptions(Config):
    section = "multilingual"

    tasks: str | None = Field(None, description="comma-separated tasks (default: all; see the list below)")
    langs: str | None = Field(None, description=(
        "all: each task's full language set as lm-eval defines it, comparable with the paper (default); "
        "paper: only the paper's 17 languages; or codes such as en,sw,zh"))
    max_tokens: AtLeastOne | None = Field(None, description=(
        "cap on generated tokens for every generation task (default: each task's own)"))
    thinking: bool | None = Field(None, description=(
        "Qwen3 thinking for generation tasks (default: the model's registry default, off)"))
    benchmax_dir: Path | None = Field(None, description=(
        "a BenchMAX checkout (the folder holding tasks/) for xifeval, xgpqa and mgsm (default: DATA_DIR/benchmax, "
        "which `xplus-eval fetch-data` fills)"))
