"""The multilingual suite: lm-eval tasks (Table 2 and 8 of the paper) against a vLLM OpenAI server.

Options: ``MultilingualOptions`` (``options.py``); lm-eval keeps ``ctx.concurrency`` requests in flight.

Results: ``scores.json["multilingual"]`` holds, per task, the score (mean over languages, 0-100), the
metric, per-language numbers and the lm-eval signature, and ``fidelity`` (per task: harness, task
source, prompt source, metric and filter, shots, thinking, and where that differs from the paper);
lm-eval's logged samples go to ``generations/multilingual/<task>.jsonl``. A task whose stored request
matches is skipped on rerun.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from statistics import mean

from xplus_release.errors import ConfigError
from xplus_release.evalsuite.base import EvalContext, Suite, SuiteResult, with_sample_defaults
from xplus_release.evalsuite.multilingual import benchmax
from xplus_release.evalsuite.multilingual.fidelity import task_fidelity
from xplus_release.evalsuite.multilingual.harness import Harness, HarnessConfig, jsonable
from xplus_release.evalsuite.multilingual.offline_assets import check_xifeval_assets
from xplus_release.evalsuite.multilingual.options import MultilingualOptions
from xplus_release.evalsuite.multilingual.report import report_section
from xplus_release.evalsuite.multilingual.tasks import TaskSpec, select
from xplus_release.registry import get_spec, is_test_model, resolve_model
from xplus_release.runs import RunFolder

# A few invented rows per task in each Hub dataset's schema (see its README): what xplus-tiny runs on.
SAMPLE_DATA = Path(__file__).parent / "sample_data"
# (BenchMAX's tasks need a BenchMAX checkout, which a fresh machine lacks: with --benchmax-dir, name them)
SAMPLE_DEFAULTS = {"tasks": "xnli,mgsm-lmeval", "langs": "en"}


class MultilingualSuite(Suite):
    name = "multilingual"

    def run(self, ctx: EvalContext) -> SuiteResult:
        """Evaluate every selected task not already in the run folder; returns the suite's scores.

        Raises:
            ConfigError: unknown task or --langs value, or no endpoint in the context.
            EndpointError: the endpoint is unreachable or does not serve ``ctx.model``.
            MissingAssetError: a dataset is neither in --data-dir nor (offline) in the cache; BenchMAX's
                task folders or NLTK's punkt_tab are not here.
        """
        ctx = with_sample_defaults(ctx, SAMPLE_DATA, **SAMPLE_DEFAULTS)
        selection = select(ctx.options.tasks, ctx.options.langs)
        if not ctx.endpoint:
            raise ConfigError("the multilingual suite talks to an OpenAI-compatible server; pass --endpoint, "
                              "or run it through `xplus-eval multilingual`, which starts one")
        checkout = locate_benchmax([spec for spec, _ in selection], ctx.options.benchmax_dir, ctx.data_dir)
        _check_served(ctx)
        harness = Harness(_harness_config(ctx, checkout))
        for spec, pairs in selection:  # every dataset is checked before the first request: a gap fails fast
            for _, lm_task in pairs:
                harness.task_config(lm_task)
        scores = ctx.run.read_scores().get(self.name, {"tasks": {}})
        for spec, pairs in selection:
            request = {**harness.config.request_signature(), "languages": [code for code, _ in pairs]}
            if not ctx.force and scores["tasks"].get(spec.name, {}).get("request") == request:
                continue
            scores["tasks"][spec.name] = self._run_task(ctx, harness, spec, pairs, request)
            scores["harness"] = {"harness": "lm-eval", "version": metadata.version("lm-eval")}
            scores.setdefault("fidelity", {})[spec.name] = task_fidelity(spec, scores["tasks"][spec.name], harness)
            ctx.checkpoint(scores)  # after every task, so a killed run keeps what is done
        return SuiteResult(scores)

    def report(self, run: RunFolder, scores: dict) -> str:
        return report_section(run, scores)

    def check_options(self, options: MultilingualOptions, model: str, data_dir: Path | None) -> None:
        """Tasks and languages, and BenchMAX's folders for the tasks that need them, before a server starts
        (the same errors as ``run``). For the test model without --tasks, ``run`` picks the sample's."""
        if options.tasks is None and is_test_model(model):
            return
        selection = select(options.tasks, options.langs)
        data_dir = data_dir or (SAMPLE_DATA if is_test_model(model) else None)
        locate_benchmax([spec for spec, _ in selection], options.benchmax_dir, data_dir)

    def summary(self, scores: dict) -> str:
        lines = [f"{e['paper_name']:<12} {e['score']:6.2f}  ({e['metric']}, {len(e['languages'])} languages)"
                 for e in scores["tasks"].values()]
        return "\n".join([*lines, f"{len(scores['tasks'])} multilingual tasks scored"])

    @property
    def hf_datasets(self) -> list[str]:
        """Hub dataset ids lm-eval's own tasks (all languages) read, for ``xplus-eval fetch-data``; BenchMAX's
        tasks name theirs in their YAML, read by ``fetch_data`` once the archive is there."""
        return list(dict.fromkeys(path for path, _ in required_datasets()))

    def fetch_data(self, out_dir: Path) -> list[str]:
        """BenchMAX's task folders (pinned archive), their datasets, NLTK's punkt_tab, sacrebleu's FLORES-101
        SentencePiece model and the code_eval metric, into ``out_dir``; returns the failures as lines."""
        from xplus_release.evalsuite.fetch import fetch_hf_datasets
        from xplus_release.evalsuite.multilingual.offline_assets import (
            fetch_code_eval,
            fetch_flores101_spm,
            fetch_punkt_tab,
        )

        failures = benchmax.fetch_archive(out_dir)
        if not failures:
            checkout = benchmax.locate(None, out_dir, list(benchmax.FOLDERS), ["fetch-data"])
            repo_ids = [path for path, _ in required_datasets(checkout=checkout, benchmax_only=True)]
            failures += fetch_hf_datasets(list(dict.fromkeys(repo_ids)), out_dir)
        return failures + fetch_punkt_tab(out_dir) + fetch_flores101_spm(out_dir) + fetch_code_eval(out_dir)

    def _run_task(self, ctx, harness: Harness, spec: TaskSpec, pairs: list[tuple[str, str]], request: dict) -> dict:
        result = harness.evaluate(spec, [lm_task for _, lm_task in pairs])
        store = ctx.run.generations(self.name, spec.name)
        if ctx.force:
            store.clear()
        languages = {}
        for code, lm_task in pairs:
            metrics = result["results"][lm_task]
            samples = result["samples"].get(lm_task, [])
            store.append([_sample_record(ctx.model, spec, code, lm_task, s) for s in samples])
            languages[code] = {
                "lm_eval_task": lm_task,
                "score": 100.0 * float(metrics[spec.metric]),
                "n": len({sample["doc_id"] for sample in samples}),  # samples repeat per filter
                "metrics": {k: v for k, v in jsonable(metrics).items() if k != "alias" and "stderr" not in k},
            }
        return {
            "score": mean(lang["score"] for lang in languages.values()),
            "metric": spec.metric,
            "paper_name": spec.paper_name,
            "languages": languages,
            "request": request,
            "signature": {
                "lm_eval_versions": {t: result["versions"].get(t) for _, t in pairs},
                "n_shot": {t: result.get("n-shot", {}).get(t) for _, t in pairs},
                "backend": "local-chat-completions" if spec.kind == "chat" else "local-completions",
            },
        }


def _check_served(ctx: EvalContext) -> None:
    from xplus_release.engines.openai_endpoint import OpenAIEndpointEngine

    OpenAIEndpointEngine(ctx.endpoint, model=ctx.model, api_key=ctx.api_key).check()


def locate_benchmax(specs: list[TaskSpec], benchmax_dir: Path | None,
                    data_dir: Path | None) -> benchmax.BenchmaxCheckout | None:
    """The BenchMAX checkout the selected tasks need (None if they are all lm-eval's own).

    Raises:
        MissingAssetError: no checkout with their folders; or xIFEval without NLTK's punkt_tab, its checkers'
            libraries or sacrebleu's FLORES-101 SentencePiece model.
    """
    folders = list(dict.fromkeys(spec.benchmax_folder for spec in specs if spec.benchmax_folder))
    if not folders:
        return None
    checkout = benchmax.locate(benchmax_dir, data_dir, folders, [s.name for s in specs if s.benchmax_folder])
    if "ifeval" in folders:
        check_xifeval_assets(data_dir)
    return checkout


def _harness_config(ctx: EvalContext, checkout: benchmax.BenchmaxCheckout | None) -> HarnessConfig:
    spec = get_spec(ctx.model)
    template_kwargs = dict(spec.chat_template_kwargs)
    if ctx.options.thinking is not None:
        template_kwargs["enable_thinking"] = ctx.options.thinking
    return HarnessConfig(
        endpoint=ctx.endpoint,
        model=ctx.model,
        tokenizer=resolve_model(ctx.model).path,
        api_key=ctx.api_key,
        max_length=ctx.max_model_len or spec.max_model_len or 2048,
        concurrency=ctx.concurrency,
        limit=ctx.limit,
        max_gen_toks=ctx.options.max_tokens,
        chat_template_kwargs=template_kwargs,
        data_dir=ctx.data_dir,
        benchmax=checkout,
    )


def _sample_record(model: str, spec: TaskSpec, lang: str, lm_task: str, sample: dict) -> dict:
    """lm-eval's logged sample (its own ``prompt_hash`` included) keyed for the run folder's store."""
    item_id = f"{lm_task}/{sample['doc_id']}/{sample.get('filter', 'none')}"
    return {"item_id": item_id, "model": model, "task": spec.name, "lang": lang, "lm_eval_task": lm_task,
            **jsonable(sample)}


def required_datasets(tasks: str | list[str] | None = None, langs: str = "all",
                      checkout: benchmax.BenchmaxCheckout | None = None,
                      benchmax_only: bool = False) -> list[tuple[str, str | None]]:
    """The Hugging Face datasets (path, config) the selected tasks read, for ``xplus-eval fetch-data``.

    BenchMAX's tasks count only with a ``checkout`` (their YAML names the dataset); ``benchmax_only``
    keeps only theirs.
    """
    harness = Harness(HarnessConfig(endpoint="", model="", tokenizer="", benchmax=checkout))
    datasets = [harness.dataset_of(lm_task) for spec, pairs in select(tasks, langs) for _, lm_task in pairs
                if (checkout is not None or not spec.benchmax_folder) and (spec.benchmax_folder or not benchmax_only)]
    return list(dict.fromkeys(datasets))
