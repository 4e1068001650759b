"""xCOMET with unbabel-comet, run in its own managed environment (its pins conflict with vLLM's).

Segment scores and error spans are kept beside the generations, in
``generations/translation/xcomet/<src>-<tgt>.jsonl``, keyed by the (source, hypothesis, reference) they
scored, so a rerun scores only segments it has not seen. Scores are reported on the paper's 0-100 scale.
"""

from __future__ import annotations

from pathlib import Path

from xplus_release.errors import MissingAssetError
from xplus_release.managed_env import ManagedEnv
from xplus_release.registry import hub_offline
from xplus_release.runs import GenerationStore, RunFolder
from xplus_release.storage import json_hash

COMET_ENV = ManagedEnv("comet", ("torch==2.13.0", "unbabel-comet==2.2.7", "setuptools<81"))
WORKER = Path(__file__).with_name("comet_worker.py")
# xCOMET's checkpoints load their encoder's config and tokenizer from this repo (weights come from the .ckpt).
ENCODER_REPOS = {"Unbabel/XCOMET-XL": "facebook/xlm-roberta-xl", "Unbabel/XCOMET-XXL": "facebook/xlm-roberta-xxl"}


def resolve_checkpoint(model: str) -> Path:
    """The ``checkpoints/model.ckpt`` of a COMET model: a local folder or .ckpt, else the Hub cache.

    Raises:
        MissingAssetError: not a local checkpoint and not downloadable (offline and not cached, or gated
            without a token); the message has the fetch command.
    """
    local = Path(model).expanduser()
    if local.is_file():
        return local.resolve()
    if (local / "checkpoints" / "model.ckpt").is_file():
        return (local / "checkpoints" / "model.ckpt").resolve()
    if local.exists():
        raise MissingAssetError(f"{local} has no checkpoints/model.ckpt; point --comet-model at a COMET model folder")
    return _hub_checkpoint(model)


def _hub_checkpoint(model: str) -> Path:
    from huggingface_hub import snapshot_download

    encoder = ENCODER_REPOS.get(model)
    fetch = f"hf download {model}" + (f" && hf download {encoder} --exclude '*.bin' '*.safetensors'" if encoder else "")
    try:
        path = Path(snapshot_download(model, local_files_only=hub_offline()))
        if encoder:
            snapshot_download(encoder, local_files_only=hub_offline(), allow_patterns=["*.json", "*.model"])
    # offline and not cached, gated, or an unknown repo: all need the same fix
    except Exception as err:  # noqa: BLE001
        raise MissingAssetError(
            f"xCOMET model {model} is not available here ({type(err).__name__}); fetch it on a connected machine "
            f"(xCOMET is gated: accept its licence on the Hub first) with: {fetch}; or pass --comet-model PATH"
        ) from None
    return path / "checkpoints" / "model.ckpt"


def signature(model: str) -> str:
    """What an xCOMET score was computed with, in the style of sacrebleu's signatures."""
    comet_pin = next(r for r in COMET_ENV.requirements if r.startswith("unbabel-comet"))
    return f"model:{model}|{comet_pin.replace('==', ':')}|scale:0-100"


def segment_key(source: str, hypothesis: str, reference: str) -> str:
    return json_hash([source, hypothesis, reference])


def score_xcomet(run: RunFolder, generations: dict[str, list[dict]], model: str, checkpoint: Path,
                 batch_size: int, force: bool, gpus: int | None = None) -> dict[str, list[dict]]:
    """Segment records ``{"score" (0-100), "error_spans"}`` per direction, scoring only what is new, on
    ``gpus`` GPUs (None: every visible one).

    Raises:
        ManagedEnvError: the comet environment could not be created or its worker failed.
    """
    stores = {d: run.generations("translation", f"xcomet/{d}") for d in generations}
    if force:
        for store in stores.values():
            store.clear()
    pending = [(d, r) for d, records in generations.items() for r in records
               if not stores[d].has(r["item_id"], model, _key(r))]
    if pending:
        _score_pending(pending, stores, model, checkpoint, batch_size, gpus)
    return {d: [stores[d].get(r["item_id"], model, _key(r)) for r in records] for d, records in generations.items()}


def _key(record: dict) -> str:
    return segment_key(record["source"], record["hypothesis"], record["reference"])


def _score_pending(pending: list[tuple[str, dict]], stores: dict[str, GenerationStore], model: str,
                   checkpoint: Path, batch_size: int, gpus: int | None) -> None:
    rows = [{"id": i, "src": r["source"], "mt": r["hypothesis"], "ref": r["reference"]}
            for i, (_, r) in enumerate(pending)]
    args = ["--checkpoint", str(checkpoint), "--batch-size", str(batch_size), "--gpus", str(-1 if gpus is None else gpus)]
    results = COMET_ENV.run_worker(WORKER, rows, args, env={"HF_HUB_OFFLINE": "1" if hub_offline() else "0"})
    by_id = {row["id"]: row for row in results}
    records: dict[str, list[dict]] = {}
    for i, (direction, r) in enumerate(pending):
        scored = by_id[i]
        records.setdefault(direction, []).append({
            "item_id": r["item_id"], "model": model, "prompt_hash": _key(r),
            "score": round(100.0 * scored["score"], 4), "error_spans": scored["error_spans"],
        })
    for direction, batch in records.items():
        stores[direction].append(batch)


def ensure_ready(model: str) -> Path:
    """Check the xCOMET model before any generation (a missing one fails fast); create the env once."""
    checkpoint = resolve_checkpoint(model)
    COMET_ENV.ensure()
    return checkpoint
