"""Where each task's dataset comes from: a ``--data-dir`` copy, or the Hugging Face datasets cache.

A data dir may hold, for each dataset, either
- plain JSONL copies laid out as ``<data_dir>/<dataset path>/<config>/<split>.jsonl`` (``config`` is
  ``default`` for a dataset without configs), e.g. ``facebook/xnli/en/validation.jsonl``, in the Hub
  dataset's own columns; the task then reads them through the ``json`` loader; or
- a Hugging Face hub cache under ``<data_dir>/hf/hub`` (what ``xplus-eval fetch-data`` fills with
  ``snapshot_download``); the task then loads the dataset from its local snapshot folder.
Without either, the Hub dataset is used, which offline (``HF_HUB_OFFLINE=1``) means the datasets cache.
"""

from __future__ import annotations

from pathlib import Path

from xplus_release.errors import MissingAssetError
from xplus_release.registry import hub_offline

SPLIT_KEYS = ("training_split", "validation_split", "test_split", "fewshot_split")


def local_copy(data_dir: Path | None, path: str, config: str | None) -> Path | None:
    """The folder of a dataset config's JSONL splits under ``data_dir``, if there is one."""
    if data_dir is None:
        return None
    folder = Path(data_dir) / path / (config or "default")
    return folder if folder.is_dir() and any(folder.glob("*.jsonl")) else None


def point_at_local_copy(cfg: dict, folder: Path) -> dict:
    """Rewrite an lm-eval task config to read its splits from ``folder``'s JSONL files."""
    splits = {cfg[key] for key in SPLIT_KEYS if cfg.get(key)}
    files = {split: str(folder / f"{split}.jsonl") for split in sorted(splits) if (folder / f"{split}.jsonl").exists()}
    missing = sorted(splits - files.keys())
    needed = cfg.get("test_split") or cfg.get("validation_split")
    if needed in missing:
        raise MissingAssetError(f"{folder} has no {needed}.jsonl, which task {cfg['task']} evaluates on; "
                                f"add it, in the columns of the Hub dataset {cfg['dataset_path']}")
    for key in SPLIT_KEYS:  # splits without a local file are dropped rather than fetched
        if cfg.get(key) in missing:
            cfg[key] = None
    cfg.update(dataset_path="json", dataset_name=None, dataset_kwargs={"data_files": files})
    return cfg


def check_cached(path: str, config: str | None, task: str) -> None:
    """Offline, make sure the datasets cache holds ``path``/``config``; online there is nothing to check.

    Raises:
        MissingAssetError: offline and not cached; names the dataset and the command that fetches it.
    """
    if not hub_offline():
        return
    import datasets
    from datasets.exceptions import DatasetNotFoundError

    try:
        datasets.load_dataset_builder(path, config)
    except (OSError, DatasetNotFoundError):  # offline and uncached: ConnectionError (an OSError) in datasets 5
        name = f"{path}" + (f" (config {config})" if config else "")
        raise MissingAssetError(
            f"dataset {name} for task {task} is not in the Hugging Face cache and HF_HUB_OFFLINE=1; on a "
            f"connected machine run `xplus-eval fetch-data` (or `hf download --repo-type dataset {path}`) "
            f"and copy the cache, or pass --data-dir with a JSONL copy"
        ) from None
