"""Markdown for what the package writes for people: run reports and model cards."""

from __future__ import annotations

from collections.abc import Iterable


def score_cell(value: float | None) -> str:
    """A score as a table shows it: two decimals, a dash when there is none."""
    return "–" if value is None else f"{value:.2f}"


def markdown_table(header: list[str], rows: Iterable[list[str]], numeric_from: int | None = None) -> list[str]:
    """The lines of a table; the columns from index ``numeric_from`` on are right-aligned (numbers)."""
    align = ["---:" if numeric_from is not None and i >= numeric_from else "---" for i in range(len(header))]
    return ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|", *("| " + " | ".join(r) + " |" for r in rows)]
