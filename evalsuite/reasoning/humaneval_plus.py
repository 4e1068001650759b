"""HumanEval+ (the paper's Table 8) through EvalPlus 0.3.1, its reference harness, in a managed environment.

OpenCompass's HumanEval+ evaluator imports evalplus, which pip cannot install beside opencompass 0.5.4's
pins; EvalPlus in an environment of its own can. It is a client of the same vLLM server (its OpenAI
backend: EvalPlus's own instruction prompt, greedy, its 768-token limit) and scores with its own
sandbox, under the suite's resource limits. The problems file is EvalPlus's release
(``HumanEvalPlus-v0.1.10.jsonl``), which ``xplus-eval fetch-data`` downloads into ``<data_dir>/evalplus``.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

from xplus_release.errors import MissingAssetError
from xplus_release.managed_env import ManagedEnv

EVALPLUS_VERSION = "0.3.1"
EVALPLUS_ENV = ManagedEnv("evalplus", (f"evalplus=={EVALPLUS_VERSION}",))
WORKER = Path(__file__).with_name("evalplus_worker.py")
PROBLEMS_VERSION = "v0.1.10"  # what evalplus 0.3.1 reads by default
PROBLEMS_FILE = f"HumanEvalPlus-{PROBLEMS_VERSION}.jsonl"
RELEASE_URL = f"https://github.com/evalplus/humanevalplus_release/releases/download/{PROBLEMS_VERSION}/HumanEvalPlus.jsonl.gz"
DATA_SUBDIR = "evalplus"
PASS = "pass"


def problems_file(data_dir: Path | None) -> Path:
    """EvalPlus's problems file: in the data dir fetch-data filled, else in EvalPlus's own cache.

    Raises:
        MissingAssetError: in neither; the message has the command that fetches it.
    """
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "evalplus"
    candidates = ([Path(data_dir) / DATA_SUBDIR] if data_dir else []) + [cache]
    for folder in candidates:
        if (folder / PROBLEMS_FILE).is_file():
            return folder / PROBLEMS_FILE
    raise MissingAssetError(f"HumanEval+ problems ({PROBLEMS_FILE}) are not in {' or '.join(map(str, candidates))}; "
                            "run `xplus-eval fetch-data --output DIR` on a connected machine and pass --data-dir DIR")


def run_humaneval_plus(model: str, base_url: str, api_key: str | None, work_dir: Path, problems: Path,
                       limit: int | None, limits: dict, timeout: float) -> dict:
    """Generate and score HumanEval+ (the first ``limit`` problems if given); the task's score entry.

    Raises:
        ManagedEnvError: the EvalPlus environment could not be created, or EvalPlus failed or timed out.
    """
    work_dir, problems = work_dir.resolve(), problems.resolve()  # EvalPlus runs in work_dir
    work_dir.mkdir(parents=True, exist_ok=True)
    if limit is not None:
        problems = _first_problems(problems, limit, work_dir / f"problems-first-{limit}.jsonl")
    env = {"HUMANEVAL_OVERRIDE_PATH": str(problems), "OPENAI_API_KEY": api_key or "EMPTY",
           "XDG_CACHE_HOME": str(work_dir / "cache"), "TOKENIZERS_PARALLELISM": "false"}
    row = {"model": model, "base_url": base_url, "root": str(work_dir / "samples"), "limits": limits}
    rows = EVALPLUS_ENV.run_worker(WORKER, [row], env=env, timeout=timeout, cwd=work_dir)
    statuses = [r for r in rows if "task_id" in r]
    plus = sum(r["base_status"] == PASS and r["plus_status"] == PASS for r in statuses)
    base = sum(r["base_status"] == PASS for r in statuses)
    return {
        "paper_name": "HumanEval+", "metric": "pass@1", "score": round(100.0 * plus / len(statuses), 4),
        "datasets": {"humaneval_plus": {"pass@1 (base + plus tests)": round(100.0 * plus / len(statuses), 4),
                                        "pass@1 (base tests)": round(100.0 * base / len(statuses), 4)}},
        "n": len(statuses), "summary": next(r["samples"] for r in rows if "samples" in r),
    }


def _first_problems(source: Path, limit: int, target: Path) -> Path:
    lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    target.write_text("\n".join(lines[:limit]) + "\n", encoding="utf-8")
    return target


def fetch_problems(out_dir: Path) -> list[str]:
    """Download EvalPlus's HumanEval+ release into ``out_dir/evalplus``; returns the failures as lines."""
    from xplus_release.evalsuite.fetch import download

    target = out_dir / DATA_SUBDIR / PROBLEMS_FILE
    if target.is_file():
        return []

    def unpack(packed: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        partial.write_bytes(gzip.decompress(packed))
        partial.replace(target)  # a cut download never looks complete

    return download(RELEASE_URL, "HumanEval+ problems", unpack)
