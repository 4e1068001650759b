"""Model registry, the built-in tiny model, and run folders (resume, damage, mismatches)."""

import hashlib
import json
import os

import pytest

from xplus_release.errors import MissingAssetError, RunFolderError, UnknownModelError
from xplus_release.registry import REGISTRY, get_spec, resolve_model
from xplus_release.runs import GenerationStore, RunFolder


def test_released_models_and_baselines_are_registered_with_thinking_off():
    for name in ("LLaMAX/Qwen3-XPlus-8B", "LLaMAX/Qwen3-XPlus-14B", "Qwen/Qwen3-8B", "Qwen/Qwen3-14B"):
        spec = REGISTRY[name]
        assert spec.dtype == "bfloat16" and spec.chat_template_kwargs == {"enable_thinking": False}
    assert REGISTRY["LLaMAX/Qwen3-XPlus-8B"].base_model == "Qwen/Qwen3-8B"


def test_any_hub_id_gets_default_spec():
    spec = get_spec("someorg/some-model")
    assert spec.source == "someorg/some-model" and spec.chat_template_kwargs == {"enable_thinking": False}


def test_uncached_hub_id_offline_names_the_fetch_command(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(MissingAssetError, match="hf download LLaMAX/Qwen3-XPlus-8B"):
        resolve_model("LLaMAX/Qwen3-XPlus-8B")


def test_unknown_name_and_bad_folder(tmp_path):
    with pytest.raises(UnknownModelError, match="Registered: .*xplus-tiny"):
        resolve_model("not a model")
    with pytest.raises(UnknownModelError, match="config.json"):
        resolve_model(str(tmp_path))


def test_local_folder_resolves(tiny_model):
    resolved = resolve_model(tiny_model.path)
    assert resolved.path == tiny_model.path and resolved.name == tiny_model.path


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_tiny_model_build_is_deterministic(tmp_path, tiny_model):
    from pathlib import Path

    from xplus_release.tiny import ensure_tiny_model

    rebuilt, build_id = ensure_tiny_model(tmp_path)
    assert build_id == tiny_model.revision
    assert _digest(rebuilt) == _digest(Path(tiny_model.path))
    config = json.loads((rebuilt / "config.json").read_text())
    assert config["head_dim"] == 64 and config["num_hidden_layers"] == 8


def test_tiny_chat_template_honours_enable_thinking(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model.path)
    messages = [{"role": "user", "content": "hi"}]
    off = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=False)
    on = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=True)
    assert off.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert on.endswith("<|im_start|>assistant\n")


def _record(i, model="m", h="h"):
    return {"item_id": str(i), "model": model, "prompt_hash": h, "output": f"out {i}"}


def test_store_appends_and_resumes(tmp_path):
    store = GenerationStore(tmp_path / "g" / "t.jsonl")
    store.append([_record(0), _record(1)])
    reopened = GenerationStore(store.path)
    assert reopened.has("1", "m", "h") and not reopened.has("1", "m", "other-prompt")
    assert not reopened.has("1", "other-model", "h")
    assert reopened.get("0", "m", "h")["output"] == "out 0"


def test_partial_last_line_of_a_killed_run_is_dropped(tmp_path):
    store = GenerationStore(tmp_path / "t.jsonl")
    store.append([_record(0), _record(1)])
    with open(store.path, "a") as handle:
        handle.write('{"item_id": "2", "mod')  # killed mid-write
    reopened = GenerationStore(store.path)
    assert {r["item_id"] for r in reopened.records().values()} == {"0", "1"}
    reopened.append([_record(2)])
    assert len(store.path.read_text().splitlines()) == 3


def test_malformed_line_in_the_middle_is_an_error_and_the_file_is_kept(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(_record(0)) + "\nnot json\n" + json.dumps(_record(1)) + "\n")
    before = path.read_bytes()
    with pytest.raises(RunFolderError, match=r"t.jsonl:2 is malformed.*--force"):
        GenerationStore(path).records()
    assert path.read_bytes() == before


def test_run_folder_refuses_another_models_run(tmp_path):
    run = RunFolder.open(tmp_path / "run", model="a", engine={"kind": "vllm"})
    run.write_scores("translation", {"x": 1})
    assert json.loads((tmp_path / "run" / "run.json").read_text())["versions"]["python"]
    with pytest.raises(RunFolderError, match="holds a run of 'a', not 'b'"):
        RunFolder.open(tmp_path / "run", model="b")
    again = RunFolder.open(tmp_path / "run", model="a")
    again.write_scores("reasoning", {"y": 2})
    assert again.read_scores() == {"translation": {"x": 1}, "reasoning": {"y": 2}}


def test_malformed_run_json_is_an_error(tmp_path):
    (tmp_path / "run.json").write_text("{broken")
    with pytest.raises(RunFolderError, match="not valid JSON"):
        RunFolder.open(tmp_path, model="a")
    assert (tmp_path / "run.json").read_text() == "{broken"


def test_unregistered_checkpoint_keeps_its_own_dtype_and_context_length(tiny_model):
    from xplus_release.engines.server import VLLMServer

    spec = resolve_model(tiny_model.path).spec
    assert spec.dtype == "auto" and spec.max_model_len is None  # a fine-tune may allow less than Qwen3's 32k
    cmd = VLLMServer(resolve_model(tiny_model.path), port=1).command()
    assert "--max-model-len" not in cmd and cmd[cmd.index("--dtype") + 1] == "auto"
    assert resolve_model(tiny_model.path, max_model_len=512).spec.max_model_len == 512


@pytest.mark.parametrize("offline", ["1", "0"])
@pytest.mark.parametrize("command", [["xplus_release.serve.cli"], ["xplus_release.evalsuite.cli", "all", "--no-progress"]])
def test_uncached_model_is_one_line_before_any_engine_starts(tmp_path, offline, command):
    """Online without a reachable Hub (the endpoint is a closed local port) or offline: the same one line."""
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": offline, "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"), "HF_ENDPOINT": f"http://127.0.0.1:{closed}",
           "HF_HUB_ETAG_TIMEOUT": "2", "HF_HUB_DOWNLOAD_TIMEOUT": "2"}
    result = subprocess.run([sys.executable, "-m", *command, "--model", "LLaMAX/Qwen3-XPlus-8B",
                             "-o" if "all" in command else "--port", str(tmp_path / "run") if "all" in command else "0"],
                            env=env, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: model LLaMAX/Qwen3-XPlus-8B is not in the Hugging Face cache")
    assert lines[0].endswith("hf download LLaMAX/Qwen3-XPlus-8B")
    assert "vLLM" not in result.stderr  # nothing was started
