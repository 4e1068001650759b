"""The fidelity record every suite writes beside its scores, and its table in report.md.

A record says how a number was produced (harness and version, where the task definition and its prompts
come from, metric and filter, xCOMET model, thinking mode, shots) next to the setting the paper states,
and lists where the two differ, so a reader can tell a settings delta from a model delta at a glance.
"""

from __future__ import annotations

from xplus_release.markdown import markdown_table

# record key -> column title, in table order
COLUMNS = {
    "harness": "harness",
    "task_source": "task source",
    "prompt_source": "prompts",
    "metric": "metric (filter)",
    "xcomet_model": "xCOMET model",
    "thinking": "thinking",
    "shots": "shots",
    "differences": "differs from the paper",
}


def fidelity_record(*, harness: str, task_source: str, prompt_source: str, metric: str, thinking: str,
                    shots: str, paper_setting: str, differences: list[str], xcomet_model: str | None = None) -> dict:
    """One record; keyword-only so that every suite fills every field."""
    return {"harness": harness, "task_source": task_source, "prompt_source": prompt_source, "metric": metric,
            "xcomet_model": xcomet_model or "–", "thinking": thinking, "shots": shots,
            "paper_setting": paper_setting, "differences": differences}


def render_fidelity(records: dict[str, dict]) -> list[str]:
    """Markdown lines: the paper's stated setting(s), then one row per record."""
    if not records:
        return []
    settings = list(dict.fromkeys(r["paper_setting"] for r in records.values()))
    rows = ([name, *(_cell(record.get(key)) for key in COLUMNS)] for name, record in records.items())
    return ["### Fidelity", "", *(f"The paper: {s}." for s in settings), "",
            *markdown_table(["", *COLUMNS.values()], rows), ""]


def _cell(value) -> str:
    if isinstance(value, list):
        return "; ".join(map(str, value)) or "none"
    return str(value).replace("|", "\\|") if value not in (None, "") else "–"
