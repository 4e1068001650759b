"""``xplus-eval sweep``: many models, one leaderboard; ``--data-parallel-size`` reaching vLLM.

The fast tests check bad sweep files and flags (one line, exit 2, nothing written), the Slurm scripts
``--dry-run`` prints, the leaderboard's reading of scores.json against the paper's tables, and the
server arguments ``--data-parallel-size`` gives.

The slow tests run one real sweep: a second random-weight tiny model built here (its own vLLM server, the
multilingual suite needs one), ``xplus-tiny`` through the session's server, and a folder that is not a
model; translation and multilingual on the embedded samples with the smallest limits. The sweep is
SIGKILLed in the middle of the second model and rerun (it runs only what is missing), then run again on
a local 2-CPU Ray cluster with one more model (only that one runs; the leaderboard keeps the others'
rows unchanged).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import SERVER_API_KEY

from xplus_release.evalsuite.cli import build_parser, main
from xplus_release.evalsuite.multilingual.suite import SAMPLE_DATA
from xplus_release.evalsuite.sweep.config import Sweep
from xplus_release.evalsuite.sweep.leaderboard import build_leaderboard
from xplus_release.paper import load_table

TRANSLATION = {"langs": ["en", "zh"], "dataset": "flores200-sample", "metrics": ["chrf", "bleu"], "max_tokens": 8}
MULTILINGUAL = {"tasks": "xnli", "langs": "en", "max_tokens": 8}


def _sweep(tmp_path: Path, models: list[dict], name: str = "test-sweep", **extra) -> Path:
    data = {"name": name, "output": str(tmp_path / "out"), "limit": 2, "data_dir": str(SAMPLE_DATA),
            "suites": {"translation": TRANSLATION, "multilingual": MULTILINGUAL}, "models": models, **extra}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")  # suites run in the file's order
    return path


# ---- bad input: one line, exit 2, before anything starts ----------------------------------------------

BAD_SWEEPS = {
    "unknown key": ({"models": [{"name": "a", "model": "xplus-tiny"}], "retries": 3}, "unknown sweep option(s): retries"),
    "unknown suite": ({"models": [{"name": "a", "model": "xplus-tiny"}], "suites": {"translaton": {}}},
                      "unknown suite translaton"),
    "bad suite option": ({"models": [{"name": "a", "model": "xplus-tiny"}], "suites": {"translation": {"lang": "en"}}},
                         "did you mean 'langs'"),
    "duplicate names": ({"models": [{"name": "a", "model": "xplus-tiny"}, {"name": "a", "model": "x"}]},
                        "models named twice: a"),
    "no model": ({"models": [{"name": "a"}]}, "give model"),
}


@pytest.mark.parametrize("case", BAD_SWEEPS)
def test_a_bad_sweep_file_is_one_line_and_exit_2(case, tmp_path, capsys):
    data, message = BAD_SWEEPS[case]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "output": str(tmp_path / "out"),
                                    "suites": {"translation": {}}, **data}), encoding="utf-8")
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_bad_flags_and_folders_stop_the_sweep_before_it_starts(tmp_path, capsys, monkeypatch):
    path = _sweep(tmp_path, [{"name": "a", "model": "xplus-tiny"}])
    cases = [
        (["--engine", "slurm", "--dry-run"], "needs a partition"),
        (["--force", "b"], "no model named 'b'"),
        (["--reference", "b"], "no model named 'b'"),
    ]
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    cases.append((["--engine", "ray"], "--engine ray needs Ray"))
    for flags, message in cases:
        assert main(["sweep", str(path), *flags]) == 2, flags
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, (flags, err)
    assert not (tmp_path / "out").exists()
    other = _sweep(tmp_path, [{"name": "a", "model": "xplus-tiny"}], name="other")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sweep.json").write_text(json.dumps({"name": "test-sweep", "models": ["a"]}))
    assert main(["sweep", str(other), "--engine", "slurm", "--partition", "p", "--dry-run"]) == 2
    assert "holds the runs of sweep 'test-sweep'" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["sweep.json"]


def test_slurm_dry_run_prints_one_array_per_gpu_count(tmp_path, capsys):
    models = [{"name": "small", "model": "Qwen/Qwen3-8B"}, {"name": "tp2", "model": "Qwen/Qwen3-14B",
              "tensor_parallel_size": 2, "data_parallel_size": 2}, {"name": "small2", "model": "Qwen/Qwen3-8B"}]
    path = _sweep(tmp_path, models, slurm={"time": "01:00:00", "extra": ["--mem=64G"], "setup": ["module load cuda"]})
    assert main(["sweep", str(path), "--engine", "slurm", "--partition", "gpu", "--dry-run"]) == 0
    scripts = [s for s in capsys.readouterr().out.split("# --- array job") if s.strip()]
    assert len(scripts) == 2
    one, four = ([line for line in s.splitlines()[1:] if line.strip()] for s in scripts)
    assert "#SBATCH --array=0-1" in one and "#SBATCH --gpus-per-task=1" in one
    assert "#SBATCH --array=0-0" in four and "#SBATCH --gpus-per-task=4" in four
    for lines in (one, four):
        assert {"#SBATCH --partition=gpu", "#SBATCH --time=01:00:00", "#SBATCH --mem=64G", "module load cuda"} <= set(lines)
    assert "MODELS=(small small2)" in one and "MODELS=(tp2)" in four
    command = four[-1]
    assert command.startswith(f"exec {sys.executable} -m xplus_release.evalsuite.cli sweep {path}")
    assert '--engine local --no-leaderboard --only "${MODELS[$SLURM_ARRAY_TASK_ID]}"' in command
    script = tmp_path / "four.sh"
    script.write_text("\n".join(four) + "\n")
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    assert not (tmp_path / "out").exists()  # a dry run writes nothing


def test_data_parallel_size_reaches_the_vllm_server_and_scales_clients():
    from xplus_release.config import given_flags
    from xplus_release.engines.base import DEFAULT_CONCURRENCY
    from xplus_release.evalsuite.base import RunOptions
    from xplus_release.evalsuite.endpoint import command_server
    from xplus_release.registry import resolve_model

    for command in ("all", "translation", "multilingual", "reasoning"):
        args = build_parser().parse_args([command, "--data-parallel-size", "2", "-tp", "1"])
        run = RunOptions.build(given_flags(RunOptions, args))
        argv = command_server(run, resolve_model("xplus-tiny"), None).command()
        assert argv[argv.index("--data-parallel-size") + 1] == "2", command
        assert run.client_concurrency == 2 * DEFAULT_CONCURRENCY and run.needs_own_server
    given = RunOptions.build({"data_parallel_size": 2, "concurrency": 5})
    assert given.client_concurrency == 5
    assert not RunOptions.build({"data_parallel_size": 2, "endpoint": "http://x/v1"}).needs_own_server


def test_comet_gpus_is_checked(capsys):
    assert main(["translation", "--comet-gpus", "-1"]) == 2
    assert "comet-gpus" in capsys.readouterr().err


def test_leaderboard_reads_scores_and_sets_the_papers_numbers_beside(tmp_path):
    sweep = Sweep.build({"name": "s", "output": tmp_path, "suites": {"translation": {}, "multilingual": {}},
                         "models": [{"name": "q", "model": "Qwen/Qwen3-8B"}, {"name": "mine", "model": "x/y"}]})
    paper = {(r["model"], r["direction"]): float(r["spbleu"]) for r in load_table("flores_x_to_lang")}
    xnli = {r["model"]: float(r["score"]) for r in load_table("multilingual_tasks") if r["task"] == "XNLI"}
    for name, bleu, acc in (("q", 10.0, 40.0), ("mine", 12.5, 35.0)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "scores.json").write_text(json.dumps({
            "translation": {"aggregates": {"x-en": {"spbleu": bleu, "ter": 80 - bleu, "directions": 16}}},
            "multilingual": {"tasks": {"xnli": {"paper_name": "XNLI", "score": acc}}}}))
    board = build_leaderboard(sweep, {"q": {"status": "done"}, "mine": {"status": "done"}})
    q, mine = board["models"]
    assert q["values"] == {"translation/x-en/spbleu": 10.0, "translation/x-en/ter": 70.0, "multilingual/XNLI": 40.0}
    assert q["paper"] == {"translation/x-en/spbleu": paper["Qwen3-8B", "x-en"], "multilingual/XNLI": xnli["Qwen3-8B"]}
    assert mine["paper"] == {}
    assert board["best"] == {"translation/x-en/spbleu": ["mine"], "translation/x-en/ter": ["mine"],
                             "multilingual/XNLI": ["q"]}


def test_view_opens_every_started_run_of_a_sweep_in_its_order(tmp_path):
    from xplus_release.evalsuite.view.cli import expand_sweeps

    (tmp_path / "sweep.json").write_text(json.dumps({"name": "s", "models": ["b", "a", "not-started"]}))
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_text("{}")
    other = tmp_path.parent / "plain-run"
    assert expand_sweeps([tmp_path, other]) == [tmp_path / "b", tmp_path / "a", other]


# ---- one real sweep ------------------------------------------------------------------------------------

def _second_tiny(tiny_model, folder: Path) -> Path:
    """xplus-tiny's tokenizer and config with other random weights: a second model, not registered."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    shutil.copytree(tiny_model.path, folder)
    torch.manual_seed(1)
    Qwen3ForCausalLM(Qwen3Config.from_pretrained(folder)).save_pretrained(folder)
    return folder


# A local Ray cluster generates a token in ~/.ray/auth_token unless the mode is set (Ray 2.60); a test leaves
# nothing in the home folder, and a token left there changes how later `ray start` clusters authenticate.
RAY_NO_TOKEN = {"RAY_AUTH_MODE": "disabled"}


def _run(path: Path, *flags: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "XPLUS_API_KEY": SERVER_API_KEY, **RAY_NO_TOKEN}
    return subprocess.run([sys.executable, "-m", "xplus_release.evalsuite.cli", "sweep", str(path), *flags],
                          env=env, capture_output=True, text=True, timeout=900, check=False)


def _since_last_command(log: Path) -> str:
    return log.read_text().rsplit("\n$ ", 1)[-1]


def _values_from_scores(run: Path) -> dict[str, float]:
    scores = json.loads((run / "scores.json").read_text())
    values = {f"translation/{key}/{m}": v for key, means in scores["translation"]["aggregates"].items()
              for m, v in means.items() if m != "directions"}
    values.update({f"multilingual/{t['paper_name']}": t["score"] for t in scores["multilingual"]["tasks"].values()})
    return values


@pytest.fixture(scope="module")
def killed_and_rerun(tiny_model, vllm_server, tmp_path_factory):
    """The sweep SIGKILLed once the second model's translation is done, then rerun to the end."""
    tmp = tmp_path_factory.mktemp("sweep")
    (tmp / "not-a-model").mkdir()
    models = [{"name": "tiny2", "model": str(_second_tiny(tiny_model, tmp / "tiny2-model")), "max_model_len": 2048},
              {"name": "tiny", "model": "xplus-tiny", "endpoint": vllm_server.base_url},
              {"name": "broken", "model": str(tmp / "not-a-model")}]
    path = _sweep(tmp, models, reference="tiny")
    out = tmp / "out"
    env = {**os.environ, "XPLUS_API_KEY": SERVER_API_KEY}
    proc = subprocess.Popen([sys.executable, "-m", "xplus_release.evalsuite.cli", "sweep", str(path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    run_file = out / "tiny" / "run.json"
    deadline = time.monotonic() + 600
    while not (run_file.is_file() and "translation" in json.loads(run_file.read_text()).get("suites_done", {})):
        assert proc.poll() is None and time.monotonic() < deadline, "the sweep ended before the kill"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and the model's xplus-eval all (its own group)
    proc.wait()
    generated = (out / "tiny" / "generations" / "translation" / "en-zh.jsonl").read_text()
    tiny2_scores = (out / "tiny2" / "scores.json").stat().st_mtime_ns
    rerun = _run(path)
    return path, out, rerun, generated, tiny2_scores


@pytest.mark.slow
def test_sweep_rerun_after_sigkill_runs_only_what_is_missing(killed_and_rerun):
    _, out, rerun, generated, tiny2_scores = killed_and_rerun
    assert "== tiny2: done earlier, skipped" in rerun.stderr
    assert (out / "tiny2" / "scores.json").stat().st_mtime_ns == tiny2_scores
    second = _since_last_command(out / ".sweep" / "tiny.log")
    assert "== multilingual" in second and "== translation" not in second
    assert (out / "tiny" / "generations" / "translation" / "en-zh.jsonl").read_text() == generated


@pytest.mark.slow
def test_a_failing_model_is_listed_and_the_others_still_run(killed_and_rerun):
    _, out, rerun, _, _ = killed_and_rerun
    assert rerun.returncode == 1
    assert "error: model broken failed: model folder" in rerun.stderr and "no config.json" in rerun.stderr
    board = json.loads((out / "leaderboard.json").read_text())
    status = {row["name"]: row["status"] for row in board["models"]}
    assert status == {"tiny2": "done", "tiny": "done", "broken": "failed"}
    assert "- broken: failed: model folder" in (out / "leaderboard.md").read_text()


@pytest.mark.slow
def test_leaderboard_lists_both_models_with_their_scores(killed_and_rerun):
    _, out, _, _, _ = killed_and_rerun
    board = json.loads((out / "leaderboard.json").read_text())
    rows = {row["name"]: row for row in board["models"]}
    for name in ("tiny2", "tiny"):
        assert rows[name]["values"] == _values_from_scores(out / name)
        assert "translation/en-x/chrf" in rows[name]["values"] and "multilingual/XNLI" in rows[name]["values"]
    assert rows["tiny2"]["significance"]["translation/en-x/chrf"]["outcome"] in ("better", "worse", "same")
    markdown = (out / "leaderboard.md").read_text()
    assert "| tiny2 |" in markdown and "| tiny |" in markdown


@pytest.mark.slow
def test_the_ray_engine_runs_only_the_new_model_and_keeps_the_leaderboard(killed_and_rerun, vllm_server):
    path, out, _, _, _ = killed_and_rerun
    before = {row["name"]: row["values"] for row in json.loads((out / "leaderboard.json").read_text())["models"]}
    data = yaml.safe_load(path.read_text())
    data["models"] = [m for m in data["models"] if m["name"] != "broken"]
    data["models"].append({"name": "tiny-ray", "model": "xplus-tiny", "endpoint": vllm_server.base_url})
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    done = _run(path, "--engine", "ray", "--ray-cpus", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "tiny2: done earlier, skipped" in done.stderr and "tiny: done earlier, skipped" in done.stderr
    assert "== tiny-ray: done" in done.stderr
    after = {row["name"]: row["values"] for row in json.loads((out / "leaderboard.json").read_text())["models"]}
    assert after["tiny2"] == before["tiny2"] and after["tiny"] == before["tiny"]
    assert after["tiny-ray"] == _values_from_scores(out / "tiny-ray")
