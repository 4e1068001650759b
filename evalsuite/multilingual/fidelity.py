"""How each multilingual task was run, beside what the paper states, so a delta can be told apart.

The paper (Section 4.1) says only: XNLI, MGSM, xIFEval, XStoryCloze, XCOPA, XGPQA and XWinograd are
evaluated "using the BenchMax suite and the lm-evaluation-harness suite", scored by accuracy. Shots,
thinking mode and generation limits are not stated; each entry records ours, and lists as a difference
only what departs from what the paper does state (or what makes a run not comparable at all).
"""

from __future__ import annotations

from importlib import metadata

from xplus_release.evalsuite.fidelity import fidelity_record

PAPER_SETTING = ("BenchMAX's lm-eval tasks for xIFEval, XGPQA and MGSM (Huang et al., 2025), lm-eval's own for "
                 "XNLI, XStoryCloze, XCOPA, XWinograd; accuracy per task; shots and thinking mode not stated")


def task_fidelity(spec, entry: dict, harness) -> dict:
    """The fidelity record of one finished task (``scores.json["multilingual"]["fidelity"][task]``)."""
    config = harness.config
    version = metadata.version("lm-eval")
    if spec.benchmax_folder:
        source = f"{config.benchmax.source}, tasks/{spec.benchmax_folder}"
        prompts = f"BenchMAX's task YAML (tasks/{spec.benchmax_folder}), unchanged"
    else:
        first = next(iter(entry["languages"].values()))["lm_eval_task"]
        task_versions = sorted({str(v) for v in entry["signature"]["lm_eval_versions"].values()})
        source = f"lm-eval {version} built-in tasks ({first}, …), task version {', '.join(task_versions)}"
        prompts = "lm-eval's task YAML, unchanged"
    metric, _, filter_name = spec.metric.partition(",")
    shots = sorted({n for n in entry["signature"]["n_shot"].values() if n is not None})
    return fidelity_record(
        harness=f"lm-eval {version} ({entry['signature']['backend']} against the vLLM server)",
        task_source=source, prompt_source=prompts, metric=f"{metric} ({filter_name})",
        thinking=_thinking(config.chat_template_kwargs) if spec.kind == "chat" else "n/a (loglikelihood)",
        shots=", ".join(map(str, shots)) or "–", paper_setting=PAPER_SETTING, differences=differences(spec, config))


def differences(spec, config) -> list[str]:
    """What makes this run's setting differ from the paper's stated one."""
    notes = []
    if config.limit is not None:
        notes.append(f"--limit {config.limit}: a subset of items, not comparable with the paper")
    if config.max_gen_toks is not None and spec.kind != "loglikelihood":
        notes.append(f"generation capped at {config.max_gen_toks} tokens (the task's own limit is overridden)")
    if spec.name == "mgsm-lmeval":
        notes.append("lm-eval's 11-language MGSM, not BenchMAX's 17-language xMGSM the paper cites")
    if spec.benchmax_folder and config.benchmax and config.benchmax.commit is None:
        notes.append("BenchMAX checkout of unknown commit")
    elif spec.benchmax_folder and config.benchmax and "differs" in config.benchmax.source:
        notes.append(f"BenchMAX at {config.benchmax.commit}, not the pinned commit")
    return notes


def _thinking(template_kwargs: dict) -> str:
    enabled = template_kwargs.get("enable_thinking")
    return "model default" if enabled is None else ("on" if enabled else "off")
