"""The multilingual benchmarks, one row each: our name (as ``xplus-eval multilingual --tasks`` takes it),
the paper's name for it, the lm-eval task and languages that run it, and the Hub dataset and task type a
model card files its score under. ``xplus-eval`` (``evalsuite/multilingual``) and the model cards
(``model_cards/benchmarks.py``) both read this table: adding a task is one row here.

Task names and language lists are those of lm-eval 0.4.13 (pinned in pyproject: names changed between
releases) and of BenchMAX's own lm-eval task folders (xIFEval, XGPQA and xMGSM, run from a BenchMAX
checkout at the pinned commit, never from a copy).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

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
    # how a model card names it on the Hub (``huggingface_hub.EvalResult``)
    dataset: str = ""  # Hub dataset id
    task_type: str = "text-generation"  # Hub task type
    task_name: str = ""  # what is measured, as the Hub shows it
    split: str | None = None  # the split scored, where the paper's number is of one

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
                 "acc,none", "loglikelihood", description="natural language inference, 15 languages",
                 dataset="facebook/xnli", task_type="text-classification", task_name="Natural Language Inference",
                 split="test"),
        TaskSpec("xstorycloze", "XStoryCloze", "xstorycloze_{lang}",
                 ("ar", "en", "es", "eu", "hi", "id", "my", "ru", "sw", "te", "zh"),
                 "acc,none", "loglikelihood", description="story ending choice, 11 languages",
                 dataset="juletxara/xstory_cloze", task_type="multiple-choice", task_name="Story Completion",
                 split="eval"),
        TaskSpec("xcopa", "XCOPA", "xcopa_{lang}",
                 ("et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh"),
                 "acc,none", "loglikelihood", description="causal commonsense, 11 languages",
                 dataset="cambridgeltl/xcopa", task_type="multiple-choice", task_name="Causal Commonsense Reasoning",
                 split="test"),
        TaskSpec("xwinograd", "XWinograd", "xwinograd_{lang}", ("en", "fr", "jp", "pt", "ru", "zh"),
                 "acc,none", "loglikelihood", lang_alias=(("jp", "ja"),),
                 description="Winograd schemas, 6 languages", dataset="Muennighoff/xwinograd",
                 task_type="multiple-choice", task_name="Coreference Resolution", split="test"),
        TaskSpec("mgsm", "MGSM", "xmgsm_native_cot_{lang}", BENCHMAX_LANGS, "exact_match,flexible-extract", "chat",
                 benchmax_folder="mgsm",
                 description="BenchMAX xMGSM: grade-school math, chain of thought in the question's language, "
                             "17 languages",
                 # BenchMAX's 17-language xMGSM, as the paper cites it; mgsm-lmeval is lm-eval's
                 dataset="LLaMAX/BenchMAX_Math", task_name="Multilingual Math Reasoning", split="test"),
        TaskSpec("mgsm-lmeval", "MGSM", "mgsm_native_cot_{lang}",
                 ("bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh"),
                 "exact_match,flexible-extract", "chat",
                 description="lm-eval's MGSM (native chain of thought), 11 languages", dataset="juletxara/mgsm",
                 task_name="Multilingual Math Reasoning", split="test"),
        TaskSpec("xifeval", "xIFEval", "xifeval_{lang}", BENCHMAX_LANGS, "prompt_level_strict_acc,none",
                 "chat", benchmax_folder="ifeval",
                 description="BenchMAX xIFEval: instruction following, its language-aware checkers, 17 languages",
                 dataset="LLaMAX/BenchMAX_Rule-based", task_name="Instruction Following"),
        TaskSpec("xgpqa", "XGPQA", "xgpqa_main_native_cot_zeroshot_{lang}", BENCHMAX_LANGS,
                 "exact_match,flexible-extract", "chat", benchmax_folder="gpqa",
                 description="BenchMAX XGPQA (main): zero-shot chain of thought asked in each language, 17 languages",
                 dataset="LLaMAX/BenchMAX_Science", task_type="multiple-choice", task_name="Science Question Answering"),
        TaskSpec("mathqa", "MathQA", "mathqa", ("en",), "acc,none", "loglikelihood",
                 description="math word problems, multiple choice (English)", dataset="allenai/math_qa",
                 task_type="multiple-choice", task_name="Math Word Problems", split="test"),
        TaskSpec("humaneval_plus", "HumanEval+", "humaneval_plus", ("en",), "pass@1,create_test", "completion",
                 unsafe_code=True, description="Python function completion with EvalPlus tests (runs model code)",
                 dataset="evalplus/humanevalplus", task_name="Code Generation", split="test"),
    )
}


