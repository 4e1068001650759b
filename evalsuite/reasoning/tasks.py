"""The paper's reasoning benchmarks (Table 10, Figure 7) as OpenCompass dataset configs, plus HumanEval+.

Each OpenCompass task names the OpenCompass 0.5.4 config module that defines it, so the prompts,
post-processing and evaluators are OpenCompass's own; HumanEval+ runs through EvalPlus, its reference
harness (``humaneval_plus.py``). ``data`` lists where OpenCompass looks for the data, relative to its
data root (``COMPASS_DATA_CACHE``; ``xplus-eval fetch-data`` fills one), or the Hugging Face dataset it
loads from the hub cache; the suite checks them before it starts so a missing set is one clear line.
"""

from __future__ import annotations

from dataclasses import dataclass

from xplus_release.errors import ConfigError


@dataclass(frozen=True)
class ReasoningTask:
    name: str  # what users type in --tasks
    paper_name: str  # the name Figure 7 / Table 10 print
    config: str  # opencompass.configs.datasets.<config>
    variable: str  # the list (or dict) of dataset configs that module defines
    metric: str  # accuracy or pass@1, as the paper reports it
    data: tuple[str, ...] = ()  # paths under the OpenCompass data root
    hf_datasets: tuple[str, ...] = ()  # hub datasets the loader reads through `datasets`
    judge: bool = False  # scored (partly) by an LLM judge: needs --judge-endpoint
    remote_scorer: str | None = None  # a scoring service the evaluator calls over the network
    harness: str = "opencompass"  # or "evalplus" (HumanEval+)


TASKS: dict[str, ReasoningTask] = {t.name: t for t in (
    ReasoningTask("bbeh", "BBEH", "bbeh.bbeh_gen", "bbeh_datasets", "accuracy", data=("data/bbeh",)),
    ReasoningTask("aime2024", "AIME2024", "aime2024.aime2024_gen_17d799", "aime2024_datasets", "accuracy",
                  data=("data/aime.jsonl",)),
    ReasoningTask("aime2025", "AIME2025", "aime2025.aime2025_cascade_eval_gen_5e9f4f", "aime2025_datasets",
                  "accuracy", data=("data/aime2025/aime2025.jsonl",), judge=True),
    ReasoningTask("olympiadbench", "OlympiadBench", "OlympiadBench.OlympiadBench_0shot_gen_be8b13",
                  "olympiadbench_datasets", "accuracy", data=("data/OlympiadBench",)),
    ReasoningTask("livemathbench", "LiveMathBench", "livemathbench.livemathbench_greedy_gen_9befbf",
                  "livemathbench_datasets", "accuracy", hf_datasets=("opencompass/LiveMathBench",)),
    ReasoningTask("olymmath", "OlymMath", "OlymMATH.olymmath_llmverify_gen_97b203", "olymmath_datasets",
                  "accuracy", hf_datasets=("RUC-AIBOX/OlymMATH",), judge=True),
    ReasoningTask("math", "Math", "math.math_500_gen", "math_datasets", "accuracy",
                  data=("data/math/test_prm800k_500.jsonl",)),
    ReasoningTask("mbpp", "MBPP", "mbpp.mbpp_gen_830460", "mbpp_datasets", "pass@1",
                  data=("data/mbpp/mbpp.jsonl",)),
    ReasoningTask("livecodebench_v5", "LiveCodeBench-V5", "livecodebench.livecodebench_time_split_gen_a4f90b",
                  "LCBCodeGeneration_dataset", "pass@1", data=("data/code_generation_lite",)),
    ReasoningTask("livecodebench_v6", "LiveCodeBench-V6", "livecodebench.livecodebench_v6_academic",
                  "LCBCodeGeneration_dataset", "pass@1", data=("data/code_generation_lite",)),
    ReasoningTask("bigcodebench_hard", "BigCodeBench-Hard", "bigcodebench.bigcodebench_hard_instruct_gen_8815eb",
                  "bigcodebench_hard_instruct_datasets", "pass@1", data=("data/bigcodebench",),
                  remote_scorer="https://bigcode-bigcodebench-evaluator.hf.space/"),
    ReasoningTask("humaneval", "HumanEval", "humaneval.humaneval_gen_8e312c", "humaneval_datasets", "pass@1",
                  data=("data/humaneval/human-eval-v2-20210705.jsonl",)),
    ReasoningTask("humaneval_plus", "HumanEval+", "", "", "pass@1", harness="evalplus"),
)}

# The paper counts "15" reasoning benchmarks and names 11 of them (Section 4.1: BBEH, AIME2024, AIME2025,
# OlympiadBench, LiveMathBench, OlymMath, Math, LiveCodeBench-V5, LiveCodeBench-V6, BigCodeBench-Hard,
# HumanEval). Those 11 plus MBPP run through OpenCompass here (2 need an LLM judge, 1 a remote scorer), and
# HumanEval+ (Table 8) through EvalPlus. The benchmarks it does not name are not guessed at.


def select_tasks(names: str | None, judge_available: bool) -> tuple[list[ReasoningTask], list[str]]:
    """The tasks to run, and notes on the ones left out.

    ``names`` is a comma-separated list or None for every task. Judge-scored tasks are left out of the
    default set (with a note) when no judge endpoint is given; named explicitly, they are an error.

    Raises:
        ConfigError: an unknown task name (the message lists the valid ones), or a judge-scored task
            named without --judge-endpoint.
    """
    if names is None:
        chosen = list(TASKS.values())
        skipped = [t for t in chosen if t.judge and not judge_available]
        notes = [f"{t.name}: skipped, it is scored by an LLM judge; pass --judge-endpoint to run it" for t in skipped]
        return [t for t in chosen if t not in skipped], notes
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in TASKS]
    if unknown or not wanted:
        raise ConfigError(f"unknown reasoning task {', '.join(unknown) or '(none)'}; choose from: {', '.join(TASKS)}")
    tasks = [TASKS[n] for n in dict.fromkeys(wanted)]
    judged = [t.name for t in tasks if t.judge]
    if judged and not judge_available:
        raise ConfigError(f"{', '.join(judged)} are scored by an LLM judge; pass --judge-endpoint URL "
                          "(and --judge-model) or leave them out of --tasks")
    return tasks, []
