"""xplus-publish: the dry-run plan, every refusal before upload, and the push against a local Hub stand-in.

The Hugging Face Hub cannot be reached from this machine: the push tests run the real huggingface_hub
client (through the installed ``xplus-publish`` console script) against ``hub_standin.HubStandIn``, a local
HTTP server implementing the routes it calls, and check the calls, the files sent and the commit message.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hub_standin import HubStandIn
from publish_fixtures import TRAINING_YAML, copy_model, write_run

from xplus_release.model_cards.cli import main

EXPECTED_FILES = [
    "README.md", "chat_template.jinja", "config.json", "generation_config.json", "model.safetensors",
    "tokenizer.json", "tokenizer_config.json", "training.yaml",
]
XPLUS_PUBLISH = str(Path(sys.executable).with_name("xplus-publish"))


@pytest.fixture
def model_dir(tiny_model, tmp_path) -> Path:
    folder = copy_model(tiny_model.path, tmp_path / "model")
    (folder / "README.md").unlink()  # the tiny model's own note; the card replaces it
    return folder


@pytest.fixture
def run_dir(tmp_path) -> Path:
    return write_run(tmp_path / "run", "xplus-tiny")


@pytest.fixture
def hub():
    stand_in = HubStandIn().start()
    yield stand_in
    stand_in.stop()


def plan_lines(out: str) -> dict[str, int]:
    """{file: size} from the dry run's listing (lines of: size in bytes, human size, path)."""
    rows = (re.match(r"^\s+(\d+)\s+[\d.]+ [KMGT]?B\s+(\S+)", line) for line in out.splitlines())
    return {m.group(2): int(m.group(1)) for m in rows if m}


def test_dry_run_lists_exactly_the_files_and_writes_the_card(model_dir, run_dir, capsys):
    # huggingface_hub's own resumable-upload state is neither listed nor refused
    (model_dir / ".cache" / "huggingface" / "upload").mkdir(parents=True)
    (model_dir / ".cache" / "huggingface" / "upload" / "model.safetensors.metadata").write_text("x")
    before = sorted(p.name for p in model_dir.iterdir())
    assert main(["--model-dir", str(model_dir), "--repo-id", "me/xplus-tiny", "--eval-run", str(run_dir), "--dry-run"]) == 0
    out = capsys.readouterr().out
    listed = plan_lines(out)
    assert sorted(listed) == EXPECTED_FILES
    assert listed == {name: (model_dir / name).stat().st_size for name in EXPECTED_FILES}
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(before + ["README.md"])
    assert f"{len(EXPECTED_FILES)} files, {sum(listed.values())} bytes" in out
    assert "nothing uploaded" in out
    card = (model_dir / "README.md").read_text()
    assert card.startswith("---\n") and "model-index:" in card and "# xplus-tiny" in card
    # a second dry run replaces its own card (the marker says it was generated) and lists the same files
    assert main(["--model-dir", str(model_dir), "--repo-id", "me/xplus-tiny", "--eval-run", str(run_dir), "--dry-run"]) == 0
    assert sorted(plan_lines(capsys.readouterr().out)) == EXPECTED_FILES


def test_look_alikes_of_secrets_are_not_refused(model_dir, capsys):
    with (model_dir / "training.yaml").open("a") as handle:
        handle.write("eval_task: mask-language-modeling-evaluation-suite\ntokenizer_path: shf_abcdefghijklmnopqrstuvwxyz0123456789\n"
                     "secret_sauce: none\n")
    assert main(["--model-dir", str(model_dir), "--repo-id", "me/xplus-tiny", "--dry-run"]) == 0, capsys.readouterr().err


def test_sharded_folder_needs_every_shard_of_its_index(model_dir, capsys):
    shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    for shard in shards:
        shutil.copy(model_dir / "model.safetensors", model_dir / shard)
    (model_dir / "model.safetensors").unlink()
    index = {"metadata": {}, "weight_map": {"a.weight": shards[0], "b.weight": shards[1]}}
    (model_dir / "model.safetensors.index.json").write_text(json.dumps(index))
    assert main(["--model-dir", str(model_dir), "--repo-id", "me/sharded", "--dry-run"]) == 0
    assert set(shards) <= set(plan_lines(capsys.readouterr().out))
    (model_dir / shards[1]).unlink()
    (model_dir / "README.md").unlink()
    assert main(["--model-dir", str(model_dir), "--repo-id", "me/sharded", "--dry-run"]) == 2
    assert f"missing shard {shards[1]}" in capsys.readouterr().err


def _drop_chat_template(folder: Path) -> None:
    (folder / "chat_template.jinja").unlink()
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("chat_template")
    (folder / "tokenizer_config.json").write_text(json.dumps(config))


def _other_model(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    config["rope_theta"] = config.get("rope_theta", 10000) * 2
    (folder / "config.json").write_text(json.dumps(config))


REFUSALS = {
    "no tokenizer": (lambda d: (d / "tokenizer.json").unlink(), [], "incomplete: missing tokenizer"),
    "no config": (lambda d: (d / "config.json").unlink(), [], "missing config.json"),
    "no chat template": (_drop_chat_template, [], "missing chat template"),
    "no weights": (lambda d: (d / "model.safetensors").unlink(), [], "missing weights"),
    "pickle weights": (lambda d: (d / "pytorch_model.bin").write_bytes(b"\x80\x04"), [], "pickle weights (pytorch_model.bin)"),
    ".env": (lambda d: (d / ".env").write_text("WANDB_API_KEY=x\n"), [], "holds secrets (.env)"),
    "key file": (lambda d: (d / "deploy.pem").write_text("x"), [], "holds secrets (deploy.pem)"),
    "token in training.yaml": (
        lambda d: (d / "training.yaml").open("a").write("hub_token: hf_" + "a1B2" * 9 + "\n"),
        [], f"training.yaml:{len(TRAINING_YAML.splitlines()) + 1} looks like a secret"),
    "api key in config": (
        lambda d: (d / "generation_config.json").write_text('{"api_key": "0123456789abcdef0123"}'),
        [], "generation_config.json:1 looks like a secret"),
    "stray file": (lambda d: (d / "notes.txt").write_text("x"), [], "outside the upload allow-list (notes.txt)"),
    "stray folder": (lambda d: (d / "checkpoint-10").mkdir() or (d / "checkpoint-10" / "config.json").write_text("{}"),
                     [], "outside the upload allow-list (checkpoint-10/config.json)"),
    "hand-written README": (lambda d: (d / "README.md").write_text("# my notes\n"), [], "was not generated by xplus-publish"),
    "repo id without org": (lambda d: None, ["--repo-id", "xplus-tiny"], "is not ORG/NAME"),
    "repo id with a space": (lambda d: None, ["--repo-id", "me/xplus tiny"], "is not ORG/NAME"),
    "repo id too deep": (lambda d: None, ["--repo-id", "me/a/b"], "is not ORG/NAME"),
    "PR on a branch": (lambda d: None, ["--create-pr", "--revision", "dev"], "--create-pr opens a pull request against main"),
    "run of another model": (lambda d: None, ["--eval-run", "OTHER_RUN"], "is a run of 'Qwen/Qwen3-8B'"),
    "run of another folder": (_other_model, ["--eval-run", "RUN"], "is a run of 'xplus-tiny'"),
    "missing run folder": (lambda d: None, ["--eval-run", "NO_RUN"], "is not an xplus-eval run folder"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusals_are_one_line_and_touch_nothing(case, model_dir, run_dir, tmp_path, capsys):
    damage, extra, message = REFUSALS[case]
    damage(model_dir)
    before = {p.name: p.read_bytes() for p in model_dir.iterdir() if p.is_file()}
    paths = {"RUN": str(run_dir), "OTHER_RUN": str(write_run(tmp_path / "other", "Qwen/Qwen3-8B")),
             "NO_RUN": str(tmp_path / "nowhere")}
    extra = [paths.get(arg, arg) for arg in extra]
    argv = ["--model-dir", str(model_dir), "--repo-id", "me/xplus-tiny", "--dry-run"]
    if "--repo-id" in extra:
        argv = argv[:2] + argv[4:]
    assert main(argv + extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
    assert {p.name: p.read_bytes() for p in model_dir.iterdir() if p.is_file()} == before  # no card written


def _publish_env(hub: HubStandIn, tmp_path: Path, token: str | None = "hf_standintoken") -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="0", HF_HUB_DISABLE_XET="1", HF_HOME=str(tmp_path / "hf-home"),
               HF_HUB_DISABLE_TELEMETRY="1", NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    if token:
        env["HF_TOKEN"] = token
    return env


def _publish(argv: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([XPLUS_PUBLISH, *argv], check=False, env=env, capture_output=True, text=True, timeout=120)


def test_push_to_a_branch_sends_the_planned_files_in_one_commit(model_dir, run_dir, hub, tmp_path):
    result = _publish(["--model-dir", str(model_dir), "--repo-id", "me/xplus-tiny", "--eval-run", str(run_dir),
                       "--private", "--revision", "release-1"], _publish_env(hub, tmp_path))
    assert result.returncode == 0, result.stderr
    # huggingface_hub may ask validate-yaml more than once; the order of the distinct calls is what matters
    weights_oid = hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()
    assert list(dict.fromkeys(hub.routes())) == [
        "POST /api/repos/create",
        "POST /api/models/me/xplus-tiny/branch/release-1",
        "POST /api/validate-yaml",
        "POST /api/models/me/xplus-tiny/preupload/release-1",
        "POST /me/xplus-tiny.git/info/lfs/objects/batch",  # the weights go through LFS, the rest inline
        f"PUT /lfs-upload/{weights_oid}",
        "POST /lfs-verify",
        "POST /api/models/me/xplus-tiny/commit/release-1",
    ]
    api_calls = [r for r in hub.requests if r.method == "POST"]
    assert all(r.headers.get("authorization") == "Bearer hf_standintoken" for r in api_calls)
    assert all("authorization" not in r.headers for r in hub.lfs_uploads())  # storage URLs get no token
    validated = [r.json()["content"] for r in hub.requests if r.path == "/api/validate-yaml"]
    assert validated and set(validated) == {(model_dir / "README.md").read_text()}
    create = hub.requests[0].json()
    assert (create["organization"], create["name"], create["visibility"]) == ("me", "xplus-tiny", "private")
    commit = hub.commits()[0]
    header = commit.ndjson()[0]
    assert header["key"] == "header"
    assert header["value"]["summary"] == ("Upload xplus-tiny: 1 safetensors file(s), 8.4 MB, "
                                          "model card with translation, multilingual, reasoning results")
    assert "- model.safetensors (8.4 MB)" in header["value"]["description"]
    sent = hub.committed_files(commit)
    assert sorted(sent) == EXPECTED_FILES
    assert all(sent[name] == (model_dir / name).read_bytes() for name in EXPECTED_FILES)
    assert "uploaded: " + hub.url + "/me/xplus-tiny/commit/" in result.stdout


def test_push_as_pull_request_with_explicit_token_and_message(model_dir, hub, tmp_path):
    result = _publish(["--model-dir", str(model_dir), "--repo-id", "me/xplus-tiny", "--create-pr",
                       "--token", "hf_fromflag", "--commit-message", "Release candidate 1"],
                      _publish_env(hub, tmp_path, token=None))
    assert result.returncode == 0, result.stderr
    assert not any("/branch/" in route for route in hub.routes())
    commit = hub.commits()[0]
    assert commit.path == "/api/models/me/xplus-tiny/commit/main" and commit.query == {"create_pr": ["1"]}
    assert commit.headers["authorization"] == "Bearer hf_fromflag"
    assert commit.ndjson()[0]["value"]["summary"] == "Release candidate 1"
    assert hub.requests[0].json().get("visibility") != "private"
    assert f"uploaded: {hub.url}/me/xplus-tiny/discussions/1" in result.stdout


def test_rerun_after_a_failed_push_does_not_upload_the_weights_again(model_dir, hub, tmp_path):
    hub.fail_commits = 1
    argv = ["--model-dir", str(model_dir), "--repo-id", "me/xplus-tiny"]
    failed = _publish(argv, _publish_env(hub, tmp_path))
    last_line = failed.stderr.strip().splitlines()[-1]  # after huggingface_hub's progress bars
    assert failed.returncode == 2 and last_line.startswith("error: the Hub refused uploading for me/xplus-tiny (HTTP 409: "
                                                           "A commit has happened since")
    assert "rerun to resume" in failed.stderr and len(hub.lfs_uploads()) == 1
    resumed = _publish(argv, _publish_env(hub, tmp_path))
    assert resumed.returncode == 0, resumed.stderr
    assert len(hub.lfs_uploads()) == 1  # the stored weights were not sent again
    assert len(hub.commits()) == 2
    assert hub.committed_files(hub.commits()[-1])["model.safetensors"] == (model_dir / "model.safetensors").read_bytes()


def test_push_refusals_happen_before_any_request(model_dir, hub, tmp_path):
    no_token = _publish(["--model-dir", str(model_dir), "--repo-id", "me/xplus-tiny"], _publish_env(hub, tmp_path, token=None))
    assert no_token.returncode == 2 and no_token.stderr.startswith("error: no Hugging Face token")
    offline = _publish_env(hub, tmp_path) | {"HF_HUB_OFFLINE": "1"}
    result = _publish(["--model-dir", str(model_dir), "--repo-id", "me/xplus-tiny"], offline)
    assert result.returncode == 2 and "HF_HUB_OFFLINE=1" in result.stderr
    (model_dir / ".env").write_text("HF_TOKEN=hf_x\n")
    secret = _publish(["--model-dir", str(model_dir), "--repo-id", "me/xplus-tiny"], _publish_env(hub, tmp_path))
    assert secret.returncode == 2 and "holds secrets (.env)" in secret.stderr
    assert hub.requests == []
    assert not (model_dir / "README.md").exists()


def test_hub_refusal_is_one_line(model_dir, hub, tmp_path):
    result = _publish(["--model-dir", str(model_dir), "--repo-id", "me/forbidden"], _publish_env(hub, tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith("error: the Hub refused creating the repo for me/forbidden (HTTP 403")
    assert result.stderr.count("\n") == 1
    assert [r.path for r in hub.requests] == ["/api/repos/create"]


def test_run_of_the_folder_itself_or_an_identical_copy_is_accepted(model_dir, tmp_path, capsys):
    by_path = write_run(tmp_path / "run-by-path", str(model_dir))
    by_name = write_run(tmp_path / "run-by-name", "xplus-tiny")  # the registry's tiny model: same bytes as the copy
    by_repo = write_run(tmp_path / "run-by-repo", "me/xplus-tiny")
    for run in (by_path, by_name, by_repo):
        assert main(["--model-dir", str(model_dir), "--repo-id", "me/xplus-tiny", "--eval-run", str(run), "--dry-run"]) == 0
    assert "model card with translation, multilingual, reasoning results" in capsys.readouterr().out


def test_ignored_files_stay_out_of_the_upload_but_secrets_do_not(model_dir, capsys):
    (model_dir / "checkpoint-10").mkdir()
    (model_dir / "checkpoint-10" / "optimizer.pt").write_bytes(b"\x80\x04")
    (model_dir / "train_log.jsonl").write_text('{"step": 1}\n')
    argv = ["--model-dir", str(model_dir), "--repo-id", "me/xplus-tiny", "--dry-run",
            "--ignore", "checkpoint-*", "--ignore", "*.jsonl"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert sorted(plan_lines(out)) == EXPECTED_FILES and "2 file(s) left out by --ignore" in out
    (model_dir / "checkpoint-10" / "wandb_token").write_text("x")
    assert main(argv) == 2
    assert "holds secrets (checkpoint-10/wandb_token)" in capsys.readouterr().err
