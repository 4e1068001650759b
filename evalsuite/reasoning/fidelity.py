"""The reasoning suite's fidelity records: per task, how it was run, beside what the paper states.

The paper (Section 4.1) evaluates its reasoning benchmarks with OpenCompass, accuracy for all but the
code tasks (pass@1); it states neither the dataset config versions nor the thinking mode. HumanEval+
(Table 8) runs through EvalPlus here, for the reason in ``humaneval_plus.py``.
"""

from __future__ import annotations

from xplus_release.evalsuite.fidelity import fidelity_record
from xplus_release.evalsuite.reasoning.harness import OPENCOMPASS_VERSION
from xplus_release.evalsuite.reasoning.humaneval_plus import EVALPLUS_VERSION, PROBLEMS_VERSION

PAPER_SETTING = ("OpenCompass, accuracy (pass@1 for LiveCodeBench, BigCodeBench-Hard, HumanEval); config "
                 "versions and thinking mode not stated")


def task_fidelity(task, signature: dict) -> dict:
    """The record of one selected task, from the run's signature (thinking, max_out_len, limit, judge)."""
    if task.harness == "evalplus":
        return fidelity_record(
            harness=f"evalplus {EVALPLUS_VERSION} (its OpenAI backend against the vLLM server; its sandbox under "
                    "our resource limits)",
            task_source=f"EvalPlus HumanEval+ {PROBLEMS_VERSION}", prompt_source="EvalPlus's instruction prompt",
            metric="pass@1 (base + plus tests), greedy", thinking="the server's default (EvalPlus sends none)",
            shots="0", paper_setting=PAPER_SETTING, differences=_evalplus_differences(signature))
    return fidelity_record(
        harness=f"opencompass {OPENCOMPASS_VERSION} (OpenAISDK against the vLLM server)",
        task_source=f"opencompass.configs.datasets.{task.config}", prompt_source="OpenCompass's config, unchanged",
        metric=task.metric + (" (LLM judge)" if task.judge else ""), thinking=str(signature.get("thinking")),
        shots="as the config defines", paper_setting=PAPER_SETTING, differences=_differences(task, signature))


def _differences(task, signature: dict) -> list[str]:
    notes = []
    if signature.get("limit"):
        notes.append(f"--limit {signature['limit']}: a subset of items, not comparable with the paper")
    if signature.get("max_out_len"):
        notes.append(f"outputs capped at {signature['max_out_len']} tokens")
    if task.remote_scorer:
        notes.append(f"scored by a remote service ({task.remote_scorer})")
    return notes


def _evalplus_differences(signature: dict) -> list[str]:
    notes = ["EvalPlus, not OpenCompass: OpenCompass's HumanEval+ evaluator cannot be installed beside its pins"]
    if signature.get("limit"):
        notes.append(f"--limit {signature['limit']}: the first problems only, not comparable with the paper")
    if signature.get("max_out_len"):
        notes.append("--max-out-len does not apply: EvalPlus generates up to its own 768 tokens")
    return notes
