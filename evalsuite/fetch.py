"""``xplus-eval fetch-data``: download every dataset a run needs into one folder, on a connected machine.

    xplus-eval fetch-data --output /data/xplus-eval        # then copy the folder to the offline machine
    xplus-eval all --model LLaMAX/Qwen3-XPlus-8B --data-dir /data/xplus-eval

Layout of the folder::

    hf/hub/            a Hugging Face hub cache (datasets as ``snapshot_download(repo_type="dataset")`` stores them)
    opencompass/data/  OpenCompass's data root (what ``COMPASS_DATA_CACHE`` points at)

Each registered suite says what it needs: ``hf_datasets`` (hub dataset ids) and ``fetch_data(out_dir)``
for data a harness downloads its own way (OpenCompass's archives).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from xplus_release.errors import MissingAssetError
from xplus_release.evalsuite.base import SUITES, load_suite
from xplus_release.registry import hub_offline


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "fetch-data", help="download every dataset the suites need into one copyable folder (needs network)",
        description="On a connected machine: download the datasets of the chosen suites into --output, a folder "
                    "to copy to offline machines and pass as --data-dir.",
    )
    parser.add_argument("--output", "-o", type=Path, required=True, metavar="DIR", help="folder to fill (reused)")
    parser.add_argument("--suites", metavar="LIST",
                        help=f"comma-separated suites (default: all registered: {', '.join(SUITES)})")
    parser.set_defaults(func=_main)


def hub_snapshot(data_dir: Path | None, path: str) -> Path | None:
    """The local snapshot folder of hub dataset ``path`` in ``<data_dir>/hf/hub``, if it was fetched there."""
    if data_dir is None or not (Path(data_dir) / "hf" / "hub").is_dir():
        return None
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(path, repo_type="dataset", cache_dir=Path(data_dir) / "hf" / "hub",
                                      local_files_only=True))
    except LocalEntryNotFoundError:  # not fetched into that cache
        return None


def download(url: str, what: str, save: Callable[[bytes], None]) -> list[str]:
    """Hand the body of ``url`` (redirects followed) to ``save``; return the failure as a line naming ``what``
    (none on success): one failed download does not stop fetch-data from getting the rest."""
    import httpx

    print(f"fetching {what} ({url})", file=sys.stderr)
    try:
        response = httpx.get(url, follow_redirects=True, timeout=300)
        response.raise_for_status()
    except httpx.HTTPError as err:
        return [f"{what} {url}: {type(err).__name__}: {err}"]
    save(response.content)
    return []


def fetch_hf_datasets(repo_ids: list[str], out_dir: Path) -> list[str]:
    """``snapshot_download`` each dataset into ``out_dir/hf/hub``; return the failures as lines."""
    from huggingface_hub import snapshot_download

    failures = []
    for repo_id in repo_ids:
        print(f"fetching hub dataset {repo_id}", file=sys.stderr)
        try:
            snapshot_download(repo_id, repo_type="dataset", cache_dir=out_dir / "hf" / "hub")
        except Exception as err:  # noqa: BLE001 - network, auth or a gated set: report it and go on with the rest
            failures.append(f"{repo_id}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
    return failures


def fetch(suite_names: list[str], out_dir: Path) -> list[str]:
    """Fetch what ``suite_names`` need; return the failures (empty when everything is there).

    Raises:
        MissingAssetError: HF_HUB_OFFLINE is set, so nothing can be downloaded here.
    """
    if hub_offline():
        raise MissingAssetError("fetch-data downloads datasets but HF_HUB_OFFLINE=1 is set; run it on a connected "
                                "machine (unset HF_HUB_OFFLINE) and copy --output to this one")
    out_dir.mkdir(parents=True, exist_ok=True)
    suites = [load_suite(name) for name in suite_names]
    repo_ids = list(dict.fromkeys(d for s in suites for d in s.hf_datasets))
    failures = fetch_hf_datasets(repo_ids, out_dir)
    for suite in suites:
        failures += suite.fetch_data(out_dir)
    return failures


def _main(args: argparse.Namespace) -> int:
    from xplus_release.evalsuite.cli import parse_suites

    failures = fetch(parse_suites(args.suites), args.output)
    if failures:
        raise MissingAssetError(f"could not fetch {len(failures)} item(s): {'; '.join(failures)}")
    print(f"fetched into {args.output}; pass --data-dir {args.output} on the machine you copy it to", file=sys.stderr)
    return 0
