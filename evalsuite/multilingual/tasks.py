"""The multilingual suite's choice of tasks and languages. The tasks themselves (our names, the lm-eval
tasks behind them, their languages) are the core's table, ``xplus_release.multilingual_tasks``, which the
model cards read too; BenchMAX's come from ``benchmax.py``'s checkout. A task's score is the unweighted mean
over its languages of one lm-eval metric (the paper's Table 2/8 reports one number per task).
"""

from __future__ import annotations

from xplus_release.errors import ConfigError
from xplus_release.languages import PAPER_CODES
from xplus_release.multilingual_tasks import TASKS, TaskSpec

__all__ = ["TASKS", "TaskSpec", "resolve_languages", "resolve_tasks", "select"]


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
