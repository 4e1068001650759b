"""Which benchmark a score belongs to: its Hub dataset, task type, pretty name and the paper's name for it.

``eval_results`` turns a run's (or the paper's) scores into ``huggingface_hub.EvalResult`` entries, the
``model-index`` the Hub shows on a model page. Translation aggregates and the known multilingual and
reasoning tasks are mapped; any other task of a ``tasks`` suite gets a generic text-generation entry
named after itself, so no measured task is dropped.
"""

from __future__ import annotations

import re

from huggingface_hub import EvalResult

from xplus_release.model_cards.run_results import RunResults, task_name, task_scores, translation_aggregates
from xplus_release.multilingual_tasks import TASKS, TaskSpec

PAPER_SOURCE_NAME = "LLaMAX2 paper (arXiv:2510.09189)"
PAPER_URL = "https://arxiv.org/abs/2510.09189"


METRIC_TYPES = {"acc": "accuracy"}  # the Hub's metric id; other metric keys are used as they are
METRIC_NAMES = {
    "acc": "accuracy", "acc_norm": "accuracy (length-normalised)", "exact_match": "exact match",
    "spbleu": "spBLEU", "xcomet": "xCOMET", "chrf": "chrF", "chrfpp": "chrF++", "ter": "TER", "bleu": "BLEU",
    "offtarget": "off-target % (language ID; source copies apart)",
}


def _normalise(task: str) -> str:
    return re.sub(r"[^a-z0-9]", "", task.lower().replace("+", "plus"))


# normalised task name (``benchmark_key``) -> its row of the core's multilingual task table: its paper name
# (``paper_name``), Hub dataset, task type and split; a task is added there, never here
BENCHMARKS: dict[str, TaskSpec] = {_normalise(name): spec for name, spec in TASKS.items()}


def benchmark_key(task: str) -> str:
    """``HumanEval+`` -> ``humanevalplus``, ``xstorycloze_en`` -> ``xstorycloze``: the key into BENCHMARKS."""
    key = _normalise(task)
    if key in BENCHMARKS:
        return key
    head = _normalise(re.split(r"[_\-.]", task)[0])
    return head if head in BENCHMARKS else key


def benchmark_for(task: str) -> TaskSpec | None:
    return BENCHMARKS.get(benchmark_key(task))


def direction_label(direction: str) -> str:
    """``en-x`` -> ``en→x``: how tables print a direction."""
    return direction.replace("-", "→", 1)


def translation_dataset(from_paper: bool) -> tuple[str, str]:
    """(Hub id, pretty name): the paper reports FLORES-101 devtest; xplus-eval runs FLORES-200 devtest."""
    return ("gsarti/flores_101", "FLORES-101 devtest") if from_paper else ("facebook/flores", "FLORES-200 devtest")


def eval_results(results: RunResults) -> list[EvalResult]:
    """Every mappable score of ``results`` as an EvalResult, values exactly as stored."""
    source = {"source_name": PAPER_SOURCE_NAME, "source_url": PAPER_URL} if results.from_paper else {}
    entries: list[EvalResult] = []
    for suite_name, suite in results.scores.items():
        if suite_name == "translation":
            entries += _translation_results(suite, results.from_paper, source)
        for task, metrics in task_scores(suite).items():
            entries += _task_results(task_name(suite, task), metrics, source)
    return entries


def _translation_results(suite: dict, from_paper: bool, source: dict) -> list[EvalResult]:
    dataset_type, dataset_name = translation_dataset(from_paper)
    return [
        EvalResult(
            task_type="translation", task_name="Translation", dataset_type=dataset_type,
            dataset_name=f"{dataset_name} ({direction_label(direction)})", dataset_config=direction,
            dataset_split="devtest", metric_type=metric, metric_name=METRIC_NAMES.get(metric, metric),
            metric_value=value, **source,
        )
        for direction, metrics in translation_aggregates(suite).items()
        for metric, value in metrics.items()
    ]


def _task_results(task: str, metrics: dict[str, float], source: dict) -> list[EvalResult]:
    bench = benchmark_for(task)
    if bench is None:
        described = {"task_type": "text-generation", "dataset_type": task, "dataset_name": task}
    else:  # a variant such as xstorycloze_en keeps its own name as the dataset config
        variant = None if benchmark_key(task) == _normalise(task) else task
        described = {"task_type": bench.task_type, "task_name": bench.task_name, "dataset_type": bench.dataset,
                     "dataset_name": bench.paper_name, "dataset_split": bench.split, "dataset_config": variant}
    return [
        EvalResult(**described, metric_type=METRIC_TYPES.get(metric, metric), metric_name=METRIC_NAMES.get(metric, metric),
                   metric_value=value, **source)
        for metric, value in metrics.items()
    ]
