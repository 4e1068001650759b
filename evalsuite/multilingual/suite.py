"""The multilingual suite: lm-eval tasks (Table 2 and 8 of the paper) against a vLLM OpenAI server.

Options: ``MultilingualOptions`` (``options.py``); lm-eval keeps ``ctx.concurrency`` requests in flight.

Results: ``scores.json["multilingual"]`` holds, per task, the score (mean over languages, 0-100), the
metric, per-language numbers and the lm-eval signature; lm-eval's logged samples go to
``generations/multilingual/<task>.jsonl``. A task whose stored request matches is skipped on rerun.
"""

from __future__ import annotations

from pathlib import Path
from statistics import mean

from xplus_release.evalsuite.base import EvalContext, Suite, SuiteResult, with_sample_defaults
from xplus_release.evalsuite.multilingual.harness import Harness, HarnessConfig, jsonable
from xplus_release.evalsuite.multilingual.options import MultilingualOptions
from xplus_release.evalsuite.multilingual.report import report_section
from xplus_release.evalsuite.multilingual.tasks import TaskSpec, select

from xplus_release.errors import ConfigError
from xplus_release.registry import get_spec, resolve_model
from xplus_release.runs import RunFolder

# A few invented rows per task in each Hub dataset's schema (see its README): what xplus-tiny runs on.
SAMPLE_DATA = Path(__file__).parent / "sample_data"
SAMPLE_DEFAULTS = {"tasks": "xnli,mgsm,xgpqa", "langs": "en"}


class MultilingualSuite(Suite):
    name = "multilingual"

    def run(self, ctx: EvalContext) -> SuiteResult:
        """Evaluate every selected task not already in the run folder; returns the suite's scores.

        Raises:
            ConfigError: unknown task or --langs value, or no endpoint in the context.
            EndpointError: the endpoint is unreachable or does not serve ``ctx.model``.
            MissingAssetError: a dataset is neither in --data-dir nor (offline) in the cache.
        """
        ctx = with_sample_defaults(ctx, SAMPLE_DATA, **SAMPLE_DEFAULTS)
        selection = select(ctx.options.tasks, ctx.options.langs)
        if not ctx.endpoint:
            raise ConfigError("the multilingual suite talks to an OpenAI-compatible server; pass --endpoint, "
                              "or run it through `xplus-eval multilingual`, which starts one")
        _check_served(ctx)
        harness = Harness(_harness_config(ctx))
        for spec, pairs in selection:  # every dataset is checked before the first request: a gap fails fast
            for _, lm_task in pairs:
                harness.task_config(lm_task)
        scores = ctx.run.read_scores().get(self.name, {"tasks": {}})
        for spec, pairs in selection:
            request = {**harness.config.request_signature(), "languages": [code for code, _ in pairs]}
            if not ctx.force and scores["tasks"].get(spec.name, {}).get("request") == request:
                continue
            scores["tasks"][spec.name] = self._run_task(ctx, harness, spec, pairs, request)
            scores["harness"] = _harness_signature()
            ctx.checkpoint(scores)  # after every task, so a killed run keeps what is done
        return SuiteResult(scores)

    def report(self, run: RunFolder, scores: dict) -> str:
        return report_section(run, scores)

    def check_options(self, options: MultilingualOptions) -> None:
        """Check tasks and languages before a server starts (the same errors as ``run``)."""
        select(options.tasks, options.langs)

    def summary(self, scores: dict) -> str:
        lines = [f"{e['paper_name']:<12} {e['score']:6.2f}  ({e['metric']}, {len(e['languages'])} languages)"
                 for e in scores["tasks"].values()]
        return "\n".join([*lines, f"{len(scores['tasks'])} multilingual tasks scored"])

    @property
    def hf_datasets(self) -> list[str]:
        """Hub dataset ids every task (all languages) reads, for ``xplus-eval fetch-data``."""
        return list(dict.fromkeys(path for path, _ in required_datasets()))

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


def _harness_config(ctx: EvalContext) -> HarnessConfig:
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
    )


def _sample_record(model: str, spec: TaskSpec, lang: str, lm_task: str, sample: dict) -> dict:
    """lm-eval's logged sample (its own ``prompt_hash`` included) keyed for the run folder's store."""
    item_id = f"{lm_task}/{sample['doc_id']}/{sample.get('filter', 'none')}"
    return {"item_id": item_id, "model": model, "task": spec.name, "lang": lang, "lm_eval_task": lm_task,
            **jsonable(sample)}


def _harness_signature() -> dict:
    from importlib import metadata

    return {"harness": "lm-eval", "version": metadata.version("lm-eval")}


def required_datasets(tasks: str | list[str] | None = None, langs: str = "all") -> list[tuple[str, str | None]]:
    """The Hugging Face datasets (path, config) the selected tasks read, for ``xplus-eval fetch-data``."""
    harness = Harness(HarnessConfig(endpoint="", model="", tokenizer=""))
    datasets = [harness.dataset_of(lm_task) for _, pairs in select(tasks, langs) for _, lm_task in pairs]
    return list(dict.fromkeys(datasets))
