"""The documentation: MkDocs builds ``docs/`` strictly, and every shell example in it is accounted for.

Each ```` ```bash ```` block under ``docs/`` is preceded by ``<!-- example: NAME -->``, and NAME is in exactly
one of the three tables below: ``RUN`` (run here, in an empty folder, offline, with ``xplus-tiny``; each
entry says what the example promises and is checked), ``COVERED`` (an existing test already runs the
same command the same way: it is named) or ``NOT_RUN`` (why it cannot run on a CPU machine without the
Hub). A plain block preceded by ``<!-- output: NAME -->`` is what example NAME prints: every line of it
must appear in what the example printed. README's commands must be commands of these examples.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
VENV = Path(sys.prefix)
EXAMPLE = re.compile(r"<!-- example: ([\w-]+) -->\n```bash\n(.*?)^```", re.DOTALL | re.MULTILINE)
OUTPUT = re.compile(r"<!-- output: ([\w-]+) -->\n```\n(.*?)^```", re.DOTALL | re.MULTILINE)
BASH_FENCE = re.compile(r"^```bash$", re.MULTILINE)
SETUP = ("bash scripts/install.sh && .venv/bin/xplus-eval translation --model xplus-tiny --langs en,zh,sw --limit 20\n",
         ".venv/bin/python -m pytest -q -ra\n")


@dataclass(frozen=True)
class Promise:
    """What an example promises: files it writes (with text they contain) and text it prints."""

    files: dict[str, str] = field(default_factory=dict)  # path -> text the file contains ("" = exists)
    prints: tuple[str, ...] = ()
    same_as_repo: tuple[str, ...] = ()  # files it writes that must equal the repository's copy
    lines: dict[str, int] = field(default_factory=dict)  # path -> number of lines it has
    engine: bool = False  # starts a vLLM engine or server (marked slow)


RUN: dict[str, Promise] = {
    "sweep-paper-dry-run": Promise(prints=("#SBATCH --partition=gpu", "#SBATCH --array=0-25")),
    "keys-manage": Promise(files={"keys.yaml": "enabled: false"}, prints=("xpk-", "alice", "revoked key 'alice'")),
    "train-plan": Promise(prints=('"layers": [0, 1, 2, 3]',
                                  '"layers": [21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35]')),
    "data-demo": Promise(files={"runs/flores-demo/train.jsonl": '"messages"', "runs/flores-demo/report.json": ""}),
    "data-steps": Promise(files={"train.jsonl": '"messages"', "bad.jsonl": "wrong_column_count", "dropped.jsonl": ""}),
    "data-slurm-dry-run": Promise(prints=("#SBATCH --partition=cpu", "sbatch")),
    "publish-tiny-dry-run": Promise(files={"xplus-tiny/README.md": "me/xplus-tiny"},
                                    prints=("dry run: nothing uploaded",)),
    "publish-card-paper": Promise(same_as_repo=("model_cards/released/Qwen3-XPlus-8B/README.md",)),
    "train-tiny": Promise(files={"runs/xplus-tiny/final/model.safetensors": "", "runs/xplus-tiny/final/training.yaml": "",
                                 "runs/xplus-tiny/final/config.json": '"Qwen3ForCausalLM"'}),
    "translate-tiny": Promise(lines={"texts.zh.txt": 2}, engine=True),  # one translation per input line
    "multilingual-smoke": Promise(files={"runs/ml-smoke/scores.json": '"xnli"', "runs/ml-smoke/report.md": "",
                                         "runs/ml-smoke/generations/multilingual/xnli.jsonl": ""},
                                  prints=("2 multilingual tasks scored",), engine=True),
}

COVERED: dict[str, str] = {
    "setup-install-and-translate":  # the same command with --limit 3 --max-tokens 8 on the session's engine
        "tests/test_translation_suite.py::test_cli_writes_a_complete_run_folder_with_the_test_model_defaults",
    "setup-tests": ".ci/run",  # CI runs exactly this
    "translation-tiny":
        "tests/test_translation_suite.py::test_cli_writes_a_complete_run_folder_with_the_test_model_defaults",
    "view-tiny": "tests/test_view.py::test_headless_chromium_renders_the_heatmap_and_a_direction_page",
    "all-smoke": "tests/test_eval_all.py::test_all_resumes_after_a_kill_and_isolates_failures",
    "reasoning-smoke": "tests/test_reasoning_suite.py::test_opencompass_runs_math_and_mbpp_against_the_server",
    "serve-tiny": "tests/test_serve.py::test_translate_single_is_the_paper_prompt_greedy",  # xplus-serve, tiny, a key
    "serve-curl-chat": "tests/test_serve.py::test_openai_client_chat_completion",
    "serve-curl-translate": "tests/test_serve.py::test_translate_batch_auto_detects_flores_languages_in_order",
    "keys-serve": "tests/test_serve_keys.py::test_each_key_sees_only_its_own_usage",
    "container-cpu": "tests/test_container.py::test_podman_stop_is_a_clean_shutdown",
    "serve-translate-file": "tests/test_serve_documents.py::test_translate_file_docx_keeps_runs_and_formatting",
    "serve-detect": "tests/test_serve_documents.py::test_detect_answers_libretranslate_shapes",
    "keys-quotas": "tests/test_serve_keys_units.py::test_keys_add_sets_day_and_month_quotas",
}

NOT_RUN: dict[str, str] = {
    "setup-gpu": "needs a GPU and the released 8B model from the Hub",
    "translation-real-models": "needs a GPU, real models and FLORES from the Hub",
    "translation-compare": "compares two real-model runs (GPU); compare itself: tests/test_translation_units.py",
    "view-real-runs": "needs runs of real models and an 8B server (GPU)",
    "multilingual-benchmax-checkout": "clones BenchMAX from GitHub (network)",
    "multilingual-paper": "needs an 8B server (GPU) and the fetched datasets",
    "all-paper": "needs a GPU, the 8B model and the fetched datasets",
    "reasoning-judge": "needs an 8B server, a 32B judge server (GPUs) and the fetched datasets",
    "serve-8b": "needs two GPUs and the 8B model",
    "container-gpu": "needs a GPU host with Docker and vLLM's image from a registry",
    "data-engines": "pipeline.yaml stands for your own pipeline; Ray and Slurm need a cluster",
    "train-paper": "trains Qwen3-8B: GPUs, the model from the Hub and your data",
    "train-torchrun": "8 GPUs per node; the 2-process CPU path: tests/test_training_distributed.py",
    "translate-real": "needs the 8B model (GPU) or a server that serves it",
    "publish-release": "pushes to the Hub (network, a token and a trained 8B folder)",
    "translation-benchmax-metrics": "needs a GPU, the 8B model and FLORES from the Hub; the metrics themselves: "
                                    "tests/test_translation_units.py",
    "compare-grid": "compares two real-model runs (GPU); compare itself: tests/test_compare_significance.py",
    "serve-endpoint": "vllm serve of the 8B model needs a GPU; xplus-serve --endpoint in front of a running vLLM: "
                      "tests/test_serve_replicas.py",
    "eval-data-parallel": "needs GPUs and models from the Hub; -dp 2 on CPU: tests/test_eval_sweep.py",
    "sweep-commands": "needs real models (GPU) or a cluster; the sweep itself: tests/test_eval_sweep.py",
    "xifeval-checkers": "needs BenchMAX's task folders, which fetch-data clones from GitHub (network)",
}


def doc_pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def examples() -> dict[str, str]:
    found: dict[str, str] = {}
    for page in doc_pages():
        for name, body in EXAMPLE.findall(page.read_text(encoding="utf-8")):
            assert name not in found, f"example {name!r} is marked twice (again in {page.name})"
            found[name] = body
    return found


def outputs() -> dict[str, str]:
    return {name: body for page in doc_pages() for name, body in OUTPUT.findall(page.read_text(encoding="utf-8"))}


def commands(script: str) -> list[str]:
    """The script's commands, continuation lines joined, comments and `.venv/bin/` dropped, spaces collapsed."""
    joined = re.sub(r"\\\n\s*", " ", script)
    lines = (re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines())
    return [" ".join(line.replace(".venv/bin/", "").split()) for line in lines if line and not line.startswith("#")]


# --- the site ----------------------------------------------------------------------------------------------

def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(site)], capture_output=True, text=True, timeout=300, check=False)


def copy_docs(folder: Path) -> None:
    """docs/ and mkdocs.yml in ``folder``, to damage them there."""
    shutil.copytree(DOCS, folder / "docs")
    shutil.copy(ROOT / "mkdocs.yml", folder / "mkdocs.yml")


def test_docs_build_strictly_with_every_page_in_the_nav(tmp_path):
    built = mkdocs_build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert built.returncode == 0, built.stderr[-3000:]
    for page in doc_pages():
        html = tmp_path / "site" / ("index.html" if page.stem == "index" else f"{page.stem}/index.html")
        assert html.is_file(), f"{page.name} was not built"
    assert (tmp_path / "site" / "view.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("damage, words", [
    ("[the server](serve.md#no-such-section)", "no-such-section"),
    ("[a page](no-such-page.md)", "no-such-page.md"),
])
def test_a_broken_link_fails_the_build(tmp_path, damage, words):
    copy_docs(tmp_path)
    with (tmp_path / "docs" / "install.md").open("a", encoding="utf-8") as page:
        page.write(f"\nSee {damage}.\n")
    built = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert built.returncode != 0 and words in built.stderr


def test_a_missing_page_fails_the_build(tmp_path):
    copy_docs(tmp_path)
    (tmp_path / "docs" / "translate.md").unlink()  # in the nav, linked from other pages
    built = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert built.returncode != 0 and "translate.md" in built.stderr


def test_a_page_left_out_of_the_nav_fails_the_build(tmp_path):
    copy_docs(tmp_path)
    (tmp_path / "docs" / "orphan.md").write_text("# Orphan\n", encoding="utf-8")
    built = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert built.returncode != 0 and "orphan.md" in built.stderr


# --- the examples are accounted for ------------------------------------------------------------------------

def test_every_shell_example_is_marked_and_in_exactly_one_table():
    found = examples()
    fences = sum(len(BASH_FENCE.findall(page.read_text(encoding="utf-8"))) for page in doc_pages())
    assert fences == len(found), "a ```bash block in docs/ has no <!-- example: NAME --> line before it"
    tables = [set(RUN), set(COVERED), set(NOT_RUN)]
    assert not (tables[0] & tables[1] or tables[0] & tables[2] or tables[1] & tables[2])
    assert set(found) == set().union(*tables), f"unlisted: {set(found) - set().union(*tables)}; " \
                                              f"gone from the docs: {set().union(*tables) - set(found)}"
    assert set(outputs()) <= set(RUN), "an <!-- output --> block belongs to an example that is not run"


def test_covered_examples_name_tests_that_exist():
    for name, test in COVERED.items():
        path, _, function = test.partition("::")
        assert (ROOT / path).is_file(), f"{name}: {path} does not exist"
        if function:
            assert f"def {function}(" in (ROOT / path).read_text(encoding="utf-8"), f"{name}: no test {test}"


def test_readme_starts_with_the_two_setup_commands_and_shows_only_documented_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```bash\n(.*?)^```", readme, re.DOTALL | re.MULTILINE)
    assert tuple(blocks[:2]) == SETUP
    documented = {command for script in examples().values() for command in commands(script)}
    for script in blocks:
        for command in commands(script):
            assert command in documented, f"README command not among the docs' examples: {command}"
    assert len(readme.splitlines()) <= 250


# --- the CPU examples run ------------------------------------------------------------------------------------

def example_folder(tmp_path: Path) -> Path:
    """An empty folder that looks like a checkout: the venv and the shipped files the examples read."""
    cwd = tmp_path / "cwd"
    (cwd / "tests").mkdir(parents=True)
    (cwd / ".venv").symlink_to(VENV)
    (cwd / "training").symlink_to(ROOT / "training")
    (cwd / "tests" / "data").symlink_to(ROOT / "tests" / "data")
    return cwd


def example_env() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", VLLM_CPU_KVCACHE_SPACE="1", TOKENIZERS_PARALLELISM="false")
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] if p.engine else []) for n, p in RUN.items()])
def test_cpu_example_runs_and_keeps_its_promises(name, tmp_path):
    script, promise = examples()[name], RUN[name]
    cwd = example_folder(tmp_path)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=example_env(),
                          capture_output=True, encoding="utf-8", errors="replace", timeout=600,
                          check=False)
    printed = done.stdout + done.stderr
    assert done.returncode == 0, printed[-3000:]
    for path, text in promise.files.items():
        assert (cwd / path).is_file(), f"{name} did not write {path}"
        assert not text or text in (cwd / path).read_text(encoding="utf-8"), f"{path} lacks {text!r}"
    for text in promise.prints:
        assert text in printed, f"{name} did not print {text!r}"
    for path in promise.same_as_repo:
        assert (cwd / path).read_bytes() == (ROOT / path).read_bytes(), f"{path} differs from the committed one"
    printed_lines = {" ".join(line.split()) for line in printed.splitlines()}
    for line in outputs().get(name, "").splitlines():
        assert " ".join(line.split()) in printed_lines, f"{name} did not print: {line}"
    for path, count in promise.lines.items():
        assert len((cwd / path).read_text(encoding="utf-8").splitlines()) == count, f"{path}: not {count} lines"
