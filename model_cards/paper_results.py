"""The paper's reported numbers for one model, in the shape of a run's ``scores.json``.

The paper reports, per model, FLORES-101 spBLEU/xCOMET for 14 aggregate directions (Table 7: ``x-en``,
``en-x``, ...) and nine multilingual and reasoning tasks (Table 8), all on a 0-100 scale. Cards of the
released models are built from these, and a run card puts them beside the run's own numbers.
"""

from __future__ import annotations

from xplus_release.errors import UnknownModelError
from xplus_release.model_cards.benchmarks import benchmark_key
from xplus_release.model_cards.run_results import RunResults
from xplus_release.paper import PAPER_MODEL_NAMES, load_table, paper_name

PAPER_SOURCE = "arXiv:2510.09189, Tables 7 and 8"
_FLORES_TABLES = ("flores_x_to_lang", "flores_lang_to_x")


def paper_scores(model: str) -> dict:
    """``{"translation": {"aggregates": ...}, "multilingual": {"tasks": ...}}`` for ``model``, or ``{}``."""
    name = paper_name(model)
    if name is None:
        return {}
    scores: dict = {}
    aggregates = {
        row["direction"]: {"spbleu": float(row["spbleu"]), "xcomet": float(row["xcomet"])}
        for table in _FLORES_TABLES for row in load_table(table) if row["model"] == name
    }
    if aggregates:
        scores["translation"] = {"aggregates": aggregates}
    tasks = {
        benchmark_key(row["task"]): {"metric": "pass@1" if row["task"] == "HumanEval+" else "acc", "value": float(row["score"])}
        for row in load_table("multilingual_tasks") if row["model"] == name
    }
    if tasks:
        scores["multilingual"] = {"tasks": tasks}
    return scores


def paper_results(model: str) -> RunResults:
    """The paper's numbers for a model it reports, as ``RunResults`` marked ``from_paper``.

    Raises:
        UnknownModelError: the paper reports no numbers for ``model``.
    """
    scores = paper_scores(model)
    if not scores:
        raise UnknownModelError(
            f"the paper reports no numbers for {model!r}; choose one of {', '.join(PAPER_MODEL_NAMES)}"
        )
    return RunResults(model=model, scores=scores, source=PAPER_SOURCE, from_paper=True)
