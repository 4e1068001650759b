"""The translation suite's fidelity record: how its numbers were produced, beside the paper's setting.

The paper (Section 4.1) evaluates FLORES-101 "using the BenchMAX" suite with spBLEU and xCOMET over the
17 languages. BenchMAX's translation evaluation (tasks/translation at the pinned commit) prompts with the
same template as ``xplus_release.prompts.EVAL_PROMPT``, scores spBLEU with sacrebleu's ``flores200``
tokenizer and xCOMET with ``Unbabel/XCOMET-XXL``; the paper itself names neither. chrF and TER are scored
with BenchMAX's own sacrebleu arguments; the record names, per metric, the sacrebleu call made here and
BenchMAX's.
"""

from __future__ import annotations

from importlib import metadata

from xplus_release.evalsuite.fidelity import fidelity_record
from xplus_release.evalsuite.translation.metrics import BENCHMAX_CALLS, METRIC_SETTINGS
from xplus_release.evalsuite.translation.options import DEFAULT_COMET_MODEL
from xplus_release.evalsuite.translation.report import METRIC_LABELS

PAPER_SETTING = ("FLORES-101 devtest through BenchMAX, 17 languages, every direction, spBLEU and xCOMET, "
                 "thinking not stated; BenchMAX scores spBLEU with the flores200 tokenizer and xCOMET with "
                 "Unbabel/XCOMET-XXL")
PAPER_LANGUAGES = 17
BENCHMAX_TOKENIZER = "flores200"


def translation_fidelity(settings: dict, signatures: dict, directions: int) -> dict:
    """The record for ``scores.json["translation"]["fidelity"]["translation"]``, from the suite's settings."""
    metrics = settings["metrics"]
    harness = f"sacrebleu {metadata.version('sacrebleu')}"
    if "xcomet" in metrics:
        harness += f", {signatures['xcomet'].split('|')[1].replace(':', ' ')} (own environment)"
    return fidelity_record(
        harness=harness, task_source=f"FLORES devtest from {settings['dataset']}",
        prompt_source="the paper's template (BenchMAX's flores prompt) with BenchMAX's language names",
        metric="; ".join(metric_setting(m, settings) for m in metrics), xcomet_model=settings.get("comet_model"), thinking="off", shots="0",
        paper_setting=PAPER_SETTING, differences=differences(settings, directions))


def differences(settings: dict, directions: int) -> list[str]:
    notes = []
    if settings["dataset"] != "benchmax":
        notes.append(f"FLORES text from {settings['dataset']}, not BenchMAX's copy")
    if settings.get("limit"):
        notes.append(f"--limit {settings['limit']}: first sentences only, not comparable with the paper")
    langs = len(settings["langs"])
    if langs < PAPER_LANGUAGES or directions < langs * (langs - 1):
        notes.append(f"{langs} languages, {directions} directions (the paper: 17, all 272)")
    if "spbleu" not in settings["metrics"] or "xcomet" not in settings["metrics"]:
        notes.append("spBLEU and xCOMET not both computed")
    if "spbleu" in settings["metrics"] and settings["spbleu_tokenizer"] != BENCHMAX_TOKENIZER:
        notes.append(f"spBLEU tokenizer {settings['spbleu_tokenizer']} (BenchMAX: {BENCHMAX_TOKENIZER})")
    if settings.get("comet_model") and settings["comet_model"] != DEFAULT_COMET_MODEL:  # BenchMAX's
        notes.append(f"xCOMET model {settings['comet_model']} (BenchMAX: {DEFAULT_COMET_MODEL})")
    return notes


def metric_setting(metric: str, settings: dict) -> str:
    """``chrF: CHRF(whitespace=True) (BenchMAX: corpus_chrf(remove_whitespace=False))``: the call here, and BenchMAX's."""
    if metric == "xcomet":
        return f"xCOMET: {settings.get('comet_model')} (BenchMAX: {DEFAULT_COMET_MODEL})"
    if metric == "offtarget":
        return f"off-target %: fastText LID {settings.get('lid_model')}, source copies apart (BenchMAX: not scored)"
    if metric == "spbleu":
        ours = f"BLEU(tokenize={settings['spbleu_tokenizer']})"
    elif metric == "bleu":
        ours = "BLEU(tokenize=13a | zh | ja-mecab | ko-mecab by target)"
    else:
        kind = "TER" if metric == "ter" else "CHRF"
        ours = f"{kind}(" + ", ".join(f"{k}={v}" for k, v in METRIC_SETTINGS[metric].items()) + ")"
    return f"{METRIC_LABELS[metric]}: sacrebleu {ours} (BenchMAX: {BENCHMAX_CALLS.get(metric, 'not scored')})"
