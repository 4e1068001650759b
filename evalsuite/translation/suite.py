"""``TranslationSuite``: FLORES devtest over any direction grid, generated in one batched pass, scored
with sacrebleu (and xCOMET), aggregated as the paper does, reported beside the paper's numbers.

Options: ``TranslationOptions``. ``ctx.data_dir`` selects a local FLORES folder, ``ctx.limit`` the first
N sentences.
"""

from __future__ import annotations

from pathlib import Path

from xplus_release.evalsuite.base import EvalContext, Suite, SuiteResult
from xplus_release.evalsuite.translation import xcomet
from xplus_release.evalsuite.translation.aggregate import aggregate
from xplus_release.evalsuite.translation.data import BENCHMAX_REPO, load_flores
from xplus_release.evalsuite.translation.fidelity import translation_fidelity
from xplus_release.evalsuite.translation.generate import build_prompts, generate
from xplus_release.evalsuite.translation.metrics import check_spm_model
from xplus_release.evalsuite.translation.off_target import add_off_target
from xplus_release.evalsuite.translation.options import DEFAULT_METRICS, TranslationOptions, resolve_grid
from xplus_release.evalsuite.translation.scoring import score_corpus
from xplus_release.lid import resolve_lid_model
from xplus_release.registry import is_test_model
from xplus_release.runs import RunFolder

# The random-weight test model gets a default that runs offline on a fresh machine: the FLORES excerpt
# shipped in the package, and the metrics that need no downloaded model.
TEST_MODEL_METRICS = ("chrf", "bleu")


def default_dataset(model: str, data_dir) -> str:
    """A --data-dir of FLORES files means "local"; one filled by ``xplus-eval fetch-data`` (hf/hub) does not."""
    if data_dir is not None and not (Path(data_dir) / "hf" / "hub").is_dir():
        return "local"
    return "flores200-sample" if is_test_model(model) else "benchmax"


class TranslationSuite(Suite):
    name = "translation"
    needs_server = False  # vLLM's offline batching in process serves it as well as a server
    hf_datasets = (BENCHMAX_REPO,)  # what ``xplus-eval fetch-data`` downloads for this suite

    def run(self, ctx: EvalContext) -> SuiteResult:
        """Generate what is missing and score it.

        Raises:
            ConfigError, UnknownLanguageError: bad options (unknown language or metric, same source and
                target, unaligned files).
            MissingAssetError: FLORES data, sacrebleu's SentencePiece model, the xCOMET model or the LID
                model (offtarget) is not on this machine (checked before generating).
            ManagedEnvError: the comet environment or its worker failed.
        """
        opts: TranslationOptions = ctx.options
        langs, pairs = resolve_grid(opts)
        metrics = list(opts.metrics or (TEST_MODEL_METRICS if is_test_model(ctx.model) else DEFAULT_METRICS))
        dataset = opts.dataset or default_dataset(ctx.model, ctx.data_dir)
        checkpoint = self._preflight(metrics, opts)
        texts = load_flores(langs, dataset, ctx.data_dir, ctx.limit)
        generations = generate(ctx, build_prompts(pairs, texts), opts.max_tokens, opts.chunk_size)
        previous = {} if ctx.force else ctx.run.read_scores().get(self.name, {})
        directions, signatures = score_corpus(generations, metrics, opts.tokenizer, previous, ctx.progress,
                                              ctx.run.path)
        if checkpoint is not None:
            self._add_xcomet(ctx, generations, directions, checkpoint, opts)
            signatures["xcomet"] = xcomet.signature(opts.comet_model)
        if "offtarget" in metrics:
            signatures["offtarget"] = add_off_target(generations, directions, opts.lid_model)
        settings = _settings(opts, dataset, langs, metrics, texts, ctx)
        scores = {
            "settings": settings,
            "signatures": signatures,
            "directions": directions,
            "aggregates": aggregate(directions, [lang.code for lang in langs], metrics),
            "fidelity": {self.name: translation_fidelity(settings, signatures, len(directions))},
        }
        return SuiteResult(scores, signatures=signatures)

    def report(self, run: RunFolder, scores: dict) -> str:
        from xplus_release.evalsuite.translation.report import render_report

        return render_report(run, scores)

    def check_options(self, options: TranslationOptions, model: str, data_dir: Path | None) -> None:
        """Languages and directions, checked before any model loads."""
        resolve_grid(options)

    def summary(self, scores: dict) -> str:
        metrics = scores["settings"]["metrics"]
        lines = [f"{key}: " + ", ".join(f"{m} {scores['aggregates'][key].get(m, float('nan')):.2f}" for m in metrics)
                 for key in ("en-x", "x-en") if key in scores["aggregates"]]
        return "\n".join([*lines, f"{len(scores['directions'])} directions scored"])

    @staticmethod
    def _preflight(metrics: list[str], opts: TranslationOptions):
        """Fail on a missing metric asset before spending any time generating."""
        if "spbleu" in metrics:
            check_spm_model(opts.tokenizer)
        if "offtarget" in metrics:
            resolve_lid_model(opts.lid_model, setting="--lid-model")
        return xcomet.ensure_ready(opts.comet_model) if "xcomet" in metrics else None

    @staticmethod
    def _add_xcomet(ctx: EvalContext, generations, directions, checkpoint, opts: TranslationOptions) -> None:
        segments = xcomet.score_xcomet(ctx.run, generations, opts.comet_model, checkpoint,
                                      opts.comet_batch_size, ctx.force, opts.comet_gpus)
        for direction, records in segments.items():
            directions[direction]["xcomet"] = round(sum(r["score"] for r in records) / len(records), 4)


def _settings(opts: TranslationOptions, dataset: str, langs, metrics, texts, ctx: EvalContext) -> dict:
    return {
        "dataset": dataset,
        "data_dir": str(ctx.data_dir) if ctx.data_dir else None,
        "langs": [lang.code for lang in langs],
        "metrics": metrics,
        "segments_per_direction": len(next(iter(texts.values()))),
        "spbleu_tokenizer": opts.tokenizer,
        "comet_model": opts.comet_model if "xcomet" in metrics else None,
        "lid_model": opts.lid_model if "offtarget" in metrics else None,
        "max_tokens": opts.max_tokens,
        "limit": ctx.limit,
    }
