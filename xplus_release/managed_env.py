"""Managed environments: pinned virtual environments for tools whose pins conflict with vLLM.

unbabel-comet needs transformers<5 and numpy<2; OpenCompass needs datasets<4 and httpx==0.27.2. Neither can
live beside vLLM, so each gets its own venv, created on first use from a pinned requirement list and
cached under ``<cache>/envs/<name>-<hash>``. The main process talks to a worker script in that env
through JSONL files: the worker is a plain script (the env does not have this package installed) built on
``workers/jsonl_worker.py``, which ``run_worker`` makes importable there.

    env = ManagedEnv("comet", ("torch==2.13.0", "unbabel-comet==2.2.7", "setuptools<81"))
    rows = env.run_worker(worker_script, rows_in, ["--model", path])
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from xplus_release.errors import MissingAssetError, XPlusError
from xplus_release.paths import cache_dir

WORKER_MODULES = Path(__file__).with_name("workers")


class ManagedEnvError(XPlusError):
    """A managed environment could not be created, or its worker failed."""


@dataclass(frozen=True)
class ManagedEnv:
    name: str
    requirements: tuple[str, ...]

    @property
    def path(self) -> Path:
        digest = hashlib.sha256("\n".join(self.requirements).encode()).hexdigest()[:10]
        return cache_dir() / "envs" / f"{self.name}-{digest}"

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def ready(self) -> bool:
        return (self.path / ".complete").is_file()

    def ensure(self) -> Path:
        """Create the env if it is not there yet (minutes, once); return its python.

        Raises:
            ManagedEnvError: pip failed; the message holds pip's last lines.
        """
        if self.ready():
            return self.python
        from filelock import FileLock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path) + ".lock"):
            if not self.ready():
                self._create()
        return self.python

    def _create(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        print(f"creating the {self.name} environment in {self.path} (once; a few minutes)", file=sys.stderr)
        _run_logged([sys.executable, "-m", "venv", str(self.path)], f"create the {self.name} venv")
        pip = [str(self.python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        _run_logged(pip + ["--upgrade", "pip"], f"upgrade pip in the {self.name} env")
        _run_logged(pip + list(self.requirements), f"install {' '.join(self.requirements)}")
        (self.path / ".complete").write_text("\n".join(self.requirements) + "\n")

    def run_worker(self, script: Path, rows: list[dict], args: list[str] = (), env: dict | None = None,
                   timeout: float | None = None, timeout_setting: str = "the timeout",
                   cwd: Path | None = None) -> list[dict]:
        """Run ``script`` in this env with ``--input IN.jsonl --output OUT.jsonl`` and return OUT's rows.

        The worker's stderr (progress bars, logs) goes straight to ours. ``timeout`` (seconds) bounds the
        whole run; ``timeout_setting`` is the option a user raises when it fires, named in the error.
        ``cwd``: the folder it runs in (a harness that writes working folders where it is started writes
        them there instead of where the user started the command); paths in ``rows`` must then be absolute.

        Raises:
            ManagedEnvError: the worker exited non-zero (its last stderr lines are in the message), or ran
                past ``timeout`` (its whole process group is killed).
        """
        python = self.ensure()
        with tempfile.TemporaryDirectory(prefix=f"xplus-{self.name}-") as tmp:
            inp, out = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
            inp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
            cmd = [str(python), str(script), "--input", str(inp), "--output", str(out), *args]
            _run_logged(cmd, f"the {self.name} worker {Path(script).name}", env=_worker_env(env), timeout=timeout,
                        tee=True, timeout_setting=timeout_setting, cwd=cwd)
            if not out.exists():
                raise ManagedEnvError(f"the {self.name} worker wrote no output; rerun with its log above")
            return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line.strip()]


def _worker_env(env: dict | None) -> dict:
    """``env`` plus ``PYTHONPATH`` reaching ``xplus_release/workers`` (the workers' shared request loop)."""
    paths = [str(WORKER_MODULES), (env or {}).get("PYTHONPATH") or os.environ.get("PYTHONPATH")]
    return {**(env or {}), "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def _run_logged(cmd: list[str], what: str, env: dict | None = None, timeout: float | None = None,
                tee: bool = False, timeout_setting: str = "the timeout", cwd: Path | None = None) -> None:
    """Run ``cmd``; on failure raise with its last output lines. ``tee`` streams stderr live as well.

    stderr is read on a thread so that ``timeout`` counts while the child is still writing (reading it to
    EOF first would wait for a hung child forever). The child leads its own process group: on timeout the
    group is killed, so grandchildren (OpenCompass's task processes, a sandboxed test) die with it.

    Raises:
        MissingAssetError: ``cmd[0]`` does not exist.
        ManagedEnvError: non-zero exit, or past ``timeout`` (the message names ``timeout_setting``).
    """
    full_env = {**os.environ, **(env or {})}
    tail: deque[str] = deque(maxlen=15)
    try:
        proc = subprocess.Popen(cmd, stdout=None if tee else subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=full_env, text=True, errors="replace", start_new_session=True, cwd=cwd)
    except FileNotFoundError as err:
        raise MissingAssetError(f"cannot {what}: {err}") from None
    reader = threading.Thread(target=_drain, args=(proc.stderr, tail, tee), daemon=True)
    reader.start()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise ManagedEnvError(f"{what} timed out after {timeout:g}s and was stopped; raise {timeout_setting} "
                              f"if it needs longer") from None
    except BaseException:  # Ctrl-C or SIGTERM of ours: never leave the worker running
        _kill_group(proc)
        raise
    finally:
        reader.join(timeout=5)
    if proc.returncode != 0:
        raise ManagedEnvError(f"{what} failed (exit {proc.returncode}); last lines:\n{''.join(tail)}")


def _drain(stream, tail: deque, tee: bool) -> None:
    for line in stream:
        tail.append(line)
        if tee:
            sys.stderr.write(line)
    stream.close()


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
