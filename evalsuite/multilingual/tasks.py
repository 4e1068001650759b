"""The multilingual suite's tasks: our names, the lm-eval tasks behind them, and their languages.

Task names and language lists are those of lm-eval 0.4.13 (pinned in pyproject: names changed between
releases) and of BenchMAX's own lm-eval task folders (``benchmax.py``: xIFEval, XGPQA and xMGSM, run
from a BenchMAX checkout at the pinned commit, never from a copy). A task's score is the unweighted mean
over its languages of one lm-eval metric (the paper's Table 2/8 reports one number per task).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from xplus_release.errors import ConfigError
from xplus_release.languages import PAPER_CODES

BENCHMAX_LANGS = ("en", "zh", "es", "fr", "de", "ru", "ja", "th", "sw", "te", "bn", "ar", "ko", "vi", "cs",
                  "hu", "sr")


@dataclass(frozen=True)
class TaskSpec:
    name: str  # our name, as --tasks takes it
    paper_name: str  # the column name in the paper's Table 2/8
    lm_eval_task: str  # lm-eval task name; "{lang}" is replaced by the task's own language code
    languages: tuple[str, ...]  # language codes as lm-eval names them
    metric: str  # lm-eval result key "<metric>,<filter>"
    # "loglikelihood": multiple choice scored through /v1/completions; "chat": greedy generation through
    # /v1/chat/completions with the model's chat template; "completion": greedy raw continuation through
    # /v1/completions (HumanEval+, whose prompt is a function head to continue, as lm-eval defines it)
    kind: str
    lang_alias: tuple[tuple[str, str], ...] = ()  # lm-eval code -> our code where they differ
    unsafe_code: bool = False  # executes model-written code (HumanEval+)
    description: str = ""
    # None: a task lm-eval ships; else the folder under a BenchMAX checkout's tasks/ that defines it
    benchmax_folder: str | None = None

    def our_code(self, lm_code: str) -> str:
        return dict(self.lang_alias).get(lm_code, lm_code)

    def subtasks(self, only: Collection[str] | None = None) -> list[tuple[str, str]]:
        """``[(our language code, lm-eval task name)]``, restricted to the codes in ``only`` if given."""
        pairs = [(self.our_code(code), self.lm_eval_task.format(lang=code)) for code in self.languages]
        return [(code, task) for code, task in pairs if only is None or code in only]


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("xnli", "XNLI", "xnli_{lang}",
                 ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh"),
                 "acc,none", "loglikelihood", description="natural language inference, 15 languages"),
        TaskSpec("xstorycloze", "XStoryCloze", "xstorycloze_{lang}",
                 ("ar", "en", "es", "eu", "hi", "id", "my", "ru", "sw", "te", "zh"),
                 "acc,none", "loglikelihood", description="story ending choice, 11 languages"),
        TaskSpec("xcopa", "XCOPA", "xcopa_{lang}",
                 ("et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh"),
                 "acc,none", "loglikelihood", description="causal commonsense, 11 languages"),
        TaskSpec("xwinograd", "XWinograd", "xwinograd_{lang}", ("en", "fr", "jp", "pt", "ru", "zh"),
                 "acc,none", "loglikelihood", lang_alias=(("jp", "ja"),),
                 description="Winograd schemas, 6 languages"),
        TaskSpec("mgsm", "MGSM", "xmgsm_native_cot_{lang}", BENCHMAX_LANGS, "exact_match,flexible-extract", "chat",
                 benchmax_folder="mgsm",
                 description="BenchMAX xMGSM: grade-school math, chain of thought in the question's language, "
                             "17 languages"),
        TaskSpec("mgsm-lmeval", "MGSM", "mgsm_native_cot_{lang}",
                 ("bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh"),
                 "exact_match,flexible-extract", "chat",
                 description="lm-eval's MGSM (native chain of thought), 11 languages"),
        TaskSpec("xifeval", "xIFEval", "xifeval_{lang}", BENCHMAX_LANGS, "prompt_level_strict_acc,none",
                 "chat", benchmax_folder="ifeval",
                 description="BenchMAX xIFEval: instruction following, its language-aware checkers, 17 languages"),
        TaskSpec("xgpqa", "XGPQA", "xgpqa_main_native_cot_zeroshot_{lang}", BENCHMAX_LANGS,
                 "exact_match,flexible-extract", "chat", benchmax_folder="gpqa",
                 description="BenchMAX XGPQA (main): zero-shot chain of thought asked in each language, 17 languages"),
        TaskSpec("mathqa", "MathQA", "mathqa", ("en",), "acc,none", "loglikelihood",
                 description="math word problems, multiple choice (English)"),
        TaskSpec("humaneval_plus", "HumanEval+", "humaneval_plus", ("en",), "pass@1,create_test", "completion",
                 unsafe_code=True, description="Python function completion with EvalPlus tests (runs model code)"),
    )
}


def resolve_languages(langs: str | list[str] | None) -> frozenset[str] | None:
    """``"all"``/None -> None (each task's full set), ``"paper"`` -> the paper's 17, else a list of codes.

    Raises:
        ConfigError: a code that no task has; the message lists the known ones.
    """
    if langs is None or langs == "all":
        return None
    if langs == "paper":
        return frozenset(PAPER_CODES)
    codes = [c.strip() for c in (langs.split(",") if isinstance(langs, str) else langs) if c.strip()]
    known = sorted({spec.our_code(c) for spec in TASKS.values() for c in spec.languages})
    unknown = [c for c in codes if c not in known]
    if unknown or not codes:
        raise ConfigError(f"unknown language {', '.join(map(repr, unknown)) or '(none given)'} for --langs; use "
                          f"all, paper, or codes from: {', '.join(known)}")
    return frozenset(codes)


def select(tasks, langs) -> list[tuple[TaskSpec, list[tuple[str, str]]]]:
    """The tasks and, for each, its ``(language, lm-eval task)`` pairs under the --langs restriction.

    Raises:
        ConfigError: an unknown task, or a task none of whose languages is selected.
    """
    only = resolve_languages(langs)
    selected = []
    for spec in resolve_tasks(tasks):
        pairs = spec.subtasks(only)
        if not pairs:
            raise ConfigError(f"task {spec.name} has none of the languages {', '.join(sorted(only))}; it has "
                              f"{', '.join(spec.our_code(c) for c in spec.languages)}: add one to --langs or "
                              f"drop the task from --tasks")
        selected.append((spec, pairs))
    return selected


def resolve_tasks(names: str | list[str] | None) -> list[TaskSpec]:
    """``"xnli,mgsm"`` (or a list, or None for all) -> specs, in the order given.

    Raises:
        ConfigError: an unknown task name; the message lists the valid ones.
    """
    if names is None:
        return list(TASKS.values())
    items = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    unknown = [n for n in items if n not in TASKS]
    if unknown:
        raise ConfigError(f"unknown multilingual task {', '.join(map(repr, unknown))}; "
                          f"choose from: {', '.join(TASKS)}")
    if not items:
        raise ConfigError(f"--tasks is empty; choose from: {', '.join(TASKS)}")
    return [TASKS[n] for n in dict.fromkeys(items)]
