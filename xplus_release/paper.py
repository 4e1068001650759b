"""The paper's reported numbers, shipped as CSV under ``paper_data/`` (its README says what each holds)."""

from __future__ import annotations

import csv
import functools
from importlib import resources

# Registry names of the models whose rows the paper reports, and the names its tables print.
PAPER_MODEL_NAMES = {
    "LLaMAX/Qwen3-XPlus-8B": "Qwen3-XPlus-8B",
    "LLaMAX/Qwen3-XPlus-14B": "Qwen3-XPlus-14B",
    "Qwen/Qwen3-8B": "Qwen3-8B",
    "Qwen/Qwen3-14B": "Qwen3-14B",
}


def paper_name(model: str) -> str | None:
    """The name the paper's tables use for ``model`` (registry name or paper name), or None."""
    if model in PAPER_MODEL_NAMES:
        return PAPER_MODEL_NAMES[model]
    return model if model in PAPER_MODEL_NAMES.values() else None


@functools.cache
def load_table(name: str) -> tuple[dict[str, str], ...]:
    """Rows of one shipped table (``paper_data/README.md`` lists them), as dicts of strings (numbers are left
    to the caller to convert)."""
    text = (resources.files("xplus_release") / "paper_data" / f"{name}.csv").read_text(encoding="utf-8")
    return tuple(csv.DictReader(text.splitlines()))
