"""Every use of a library's private or undocumented parts, wrapped once.

Each wrapper says why no public API does the job. ``tests/test_internals.py`` runs each against the
installed library: after a version change, a failing test there names the wrapper to adapt, instead of a
confusing error deep inside an evaluation, a pipeline or the server.
"""

from __future__ import annotations

import contextlib
import importlib
import types
from collections.abc import Iterator
from pathlib import Path


def load_lm_eval_yaml(path: str | Path, resolve_functions: bool) -> dict:
    """A task YAML read as lm-eval reads it: ``include:`` merged, ``!function module.name`` imported from
    the YAML's folder (``resolve_functions``) or kept as text.

    lm-eval 0.4.13 has no public loader; its ``TaskManager`` uses ``lm_eval.tasks._yaml_loader.load_yaml``.

    Raises:
        ModuleNotFoundError: a ``!function`` module imports a package that is not installed.
    """
    from lm_eval.tasks._yaml_loader import load_yaml

    return load_yaml(Path(path), resolve_func=resolve_functions)


@contextlib.contextmanager
def recorded_slurm_submissions() -> Iterator[list[tuple[list[str], str]]]:
    """Inside, datatrove's Slurm executors record each submission as (sbatch arguments, script) in the
    yielded list instead of calling ``sbatch``; a submission's job id is its number in the list, so a later
    stage's ``--dependency=afterok:<id>`` names the stage it waits for.

    datatrove 0.10 has no dry run: its executors submit through the module-level
    ``datatrove.executor.slurm.launch_slurm_job(script, job_id_retriever, *sbatch_args)``, patched here.
    """
    from unittest import mock

    submitted: list[tuple[list[str], str]] = []

    def record(script: str, _job_id_retriever, *args) -> str:
        submitted.append((list(args), script))
        return str(len(submitted))

    with mock.patch("datatrove.executor.slurm.launch_slurm_job", record):
        yield submitted


def openai_http_package() -> types.ModuleType:
    """The HTTP package the openai SDK's client is built on (``httpx2`` from openai 3 on, ``httpx`` before):
    its ``DefaultAsyncHttpxClient`` accepts only that package's transports and limits.

    The SDK names it nowhere public; it is the package of ``DefaultAsyncHttpxClient``'s base class.
    """
    import openai

    return importlib.import_module(openai.DefaultAsyncHttpxClient.__mro__[1].__module__.partition(".")[0])


def fasttext_predict(model, texts: list[str], k: int = 1) -> list[list[tuple[str, float]]]:
    """fastText's ``k`` most probable (label, probability) pairs per text, most probable first; ``k=-1``:
    every label. Labels keep fastText's ``__label__`` prefix. Newlines in a text count as spaces.

    Through the compiled model (``model.f``): fastText 0.9.3's ``model.predict`` of one text builds
    ``np.array(..., copy=False)``, which numpy 2 rejects, and refuses texts with newlines.
    """
    lines = [" ".join(text.split()) + "\n" for text in texts]
    labels, probabilities = model.f.multilinePredict(lines, k, 0.0, "strict")
    return [[(label, float(p)) for label, p in zip(row_labels, row_probs, strict=True)]
            for row_labels, row_probs in zip(labels, probabilities, strict=True)]
