"""xplus-data on datatrove's other executors: a real local Ray cluster (2 CPUs, started and stopped here)
gives the local engine's bytes and drops; Slurm's sbatch scripts (--dry-run: no cluster here) name the
right commands, array sizes and dependencies; a duplicate split across shards is found on every engine."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import dill
import pytest
from test_data_pipeline import EXAMPLES, all_drops, flores, pair_rows, read_jsonl, write_jsonl

from xplus_release.training.pipeline.cli import main as xplus_data

RAY = Path(sys.executable).with_name("ray")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A one-node Ray cluster with 2 CPUs and a 200 MB object store, no dashboard; stopped afterwards.

    Without token authentication, set explicitly: Ray 2.60 otherwise turns it on for the cluster when a token is
    in ~/.ray/auth_token (left by any earlier local cluster) and the clients here fail to authenticate."""
    port = _free_port()
    temp = tmp_path_factory.mktemp("ray")
    mp = pytest.MonkeyPatch()
    mp.setenv("RAY_AUTH_MODE", "disabled")
    start = [str(RAY), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2"]
    start += ["--object-store-memory=200000000", "--include-dashboard=false", "--disable-usage-stats"]
    subprocess.run(start + [f"--temp-dir={temp}"], check=True, capture_output=True, timeout=180)
    mp.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        mp.undo()
        subprocess.run([str(RAY), "stop", "--force"], check=False, capture_output=True, timeout=120)


def run_demo(output: Path, *extra: str) -> int:
    argv = ["run", str(EXAMPLES / "flores-demo.yaml"), "--output", str(output), "--no-progress", *extra]
    return xplus_data(argv)


def test_ray_engine_gives_the_local_bytes_and_drops(tmp_path, ray_cluster):
    assert run_demo(tmp_path / "local") == 0
    assert run_demo(tmp_path / "ray", "--engine", "ray", "--workers", "2", "--tasks", "3") == 0
    local, ray = tmp_path / "local", tmp_path / "ray"
    assert (ray / "train.jsonl").read_bytes() == (local / "train.jsonl").read_bytes()
    assert all_drops(ray) and all_drops(ray) == all_drops(local)
    reports = [json.loads((out / "report.json").read_text())["steps"] for out in (local, ray)]
    assert reports[0] == reports[1]
    assert sorted(p.name for p in (ray / "logs" / "langid" / "completions").iterdir()) == [
        "00000",
        "00001",
        "00002",
    ]  # datatrove's Ray executor ran the three ranks


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_duplicates_split_across_shards_are_found_on_every_engine(tmp_path, flores_dir, engine, request):
    if engine == "ray":
        request.getfixturevalue("ray_cluster")
    en, de = flores(flores_dir, "en"), flores(flores_dir, "de")
    rows = pair_rows(en[:20], de[:20], "en", "de")
    rows += pair_rows([en[3], en[3].upper(), en[9]], [de[3], de[3], de[9] + " ..."], "en", "de")
    edited = en[11].split()
    edited[2] = "elsewhere"  # 2 bits from row 11's fingerprint
    rows += pair_rows([" ".join(edited)], [de[11]], "en", "de")
    write_jsonl(tmp_path / "a.jsonl", rows)
    (tmp_path / "p.yaml").write_text(
        f"output: {tmp_path / 'out'}\ninputs: [{{format: jsonl, path: a.jsonl}}]\ntasks: 3\nworkers: 2\n"
        "steps: [{unify: {shard_size: 7}}, {dedup: {max_conflicts: 0}}]\n",
        encoding="utf-8",
    )
    assert xplus_data(["run", str(tmp_path / "p.yaml"), "--engine", engine, "--no-progress"]) == 0
    drops = [
        d for f in sorted((tmp_path / "out" / "dedup" / "drops").glob("*.jsonl")) for d in read_jsonl(f)
    ]
    # rows 20-22 (shard a-00002, and a-00003:0) repeat rows 3 and 9 of shard a-00000 after normalisation;
    # row 23 is row 11 with one word changed: a SimHash conflict, not an exact copy
    assert [(d["record"]["id"], d["reason"]) for d in drops] == [
        ("a-00002:6", "exact_duplicate"),
        ("a-00003:0", "exact_duplicate"),
        ("a-00003:1", "exact_duplicate"),
        ("a-00003:2", "simhash_conflicts"),
    ]
    kept = [r["id"] for f in sorted((tmp_path / "out" / "dedup").glob("*.jsonl")) for r in read_jsonl(f)]
    assert "a-00000:3" in kept and "a-00001:2" in kept and len(kept) == 20  # first copies stay


def test_slurm_dry_run_prints_one_array_job_per_stage_chained_by_dependencies(tmp_path, capsys):
    output = tmp_path / "slurm"
    extra = ["--engine", "slurm", "--partition", "cpu", "--time", "01:30:00", "--cpus-per-task", "2"]
    assert run_demo(output, *extra, "--tasks", "3", "--dry-run") == 0
    printed = capsys.readouterr().out
    jobs = re.split(r"^# job \d+: ", printed, flags=re.MULTILINE)[1:]
    stages = ["unify", "clean", "dedup-signatures", "dedup-conflicts", "dedup", "langid", "instruct", "merge"]
    arrays = {"unify": 4, "dedup-conflicts": 1, "merge": 1}  # 4 inputs; one global task; one merge
    assert len(jobs) == 2 * len(stages)  # each stage: its array job, then datatrove's merge_stats job
    job_ids = {}
    for number, (stage, job, merge_stats) in enumerate(zip(stages, jobs[0::2], jobs[1::2])):
        args, script = job.split("\n", 1)
        assert f"#SBATCH --job-name=xplus-data-{stage}\n" in script
        assert f"#SBATCH --array=0-{arrays.get(stage, 3) - 1}%" in script
        assert "#SBATCH --partition=cpu\n" in script and "#SBATCH --time=01:30:00\n" in script
        assert "#SBATCH --cpus-per-task=2\n" in script
        assert f"launch_pickled_pipeline {output / 'logs' / stage / 'executor.pik'}\n" in script
        assert f"source {Path(sys.prefix) / 'bin' / 'activate'}\n" in script
        job_ids[stage] = 2 * number + 1
        if number:
            assert f"--dependency=afterok:{job_ids[stages[number - 1]]}" in args.split()
        else:
            assert "--dependency" not in args
        assert (
            f"#SBATCH --dependency=afterok:{job_ids[stage]}\n" in merge_stats
            and "merge_stats " in merge_stats
        )
        with open(output / "logs" / stage / "executor.pik", "rb") as handle:
            executor = dill.load(handle)
        assert executor.world_size == arrays.get(stage, 3)
    assert not list(output.glob("0*/*.jsonl"))  # nothing ran


def test_ray_engine_without_ray_installed_is_one_line_naming_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where the extra is missing
    assert run_demo(tmp_path / "x", "--engine", "ray") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['error: --engine ray needs Ray: pip install "xplus-release[ray]"']


def test_dry_run_needs_slurm_and_slurm_needs_a_partition(tmp_path, capsys):
    assert run_demo(tmp_path / "x", "--dry-run") == 2
    assert "--dry-run prints Slurm scripts" in capsys.readouterr().err
    assert run_demo(tmp_path / "y", "--engine", "slurm", "--dry-run") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs a partition: pass --partition" in err[0]
    assert run_demo(tmp_path / "z", "--engine", "slurm", "--partition", "cpu") == 2  # no Slurm here
    assert "sbatch is not on PATH" in capsys.readouterr().err
