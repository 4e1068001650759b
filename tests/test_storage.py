"""The one content hash and the one atomic writer (``xplus_release.storage``), and that what earlier versions
stored under other hash forms still resumes."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xplus_release.errors import ConfigError
from xplus_release.prompts import prompt_hash
from xplus_release.storage import json_hash, json_hash_forms, write_atomic, write_json_atomic
from xplus_release.training.pipeline import runner
from xplus_release.training.pipeline.config import load_pipeline

NON_ASCII = {"text": "Übersetze ins Deutsche: 你好", "path": "/tmp/données"}


def _sha16(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def test_equal_content_hashes_equally_whatever_its_key_order():
    assert json_hash({"a": 1, "b": [1, 2]}) == json_hash({"b": [1, 2], "a": 1})
    assert json_hash({"a": 1, "b": [1, 2]}) != json_hash({"a": 1, "b": [2, 1]})
    assert json_hash({"p": Path("/x")}) == json_hash({"p": "/x"})  # paths hash as their text
    assert len(json_hash(NON_ASCII)) == 16 and len(json_hash(NON_ASCII, length=40)) == 40


def test_prompt_hashes_are_the_ones_stored_generations_carry():
    """Generations are keyed by prompt hash: the helper must give exactly the hash written before it."""
    messages = [{"role": "user", "content": NON_ASCII["text"]}]
    kwargs = {"enable_thinking": False}
    stored = _sha16(json.dumps({"m": messages, "k": kwargs}, sort_keys=True, ensure_ascii=False))
    assert prompt_hash(messages, kwargs) == stored


def test_hash_forms_give_the_earlier_ascii_escaped_form():
    """Settings keys, recipe hashes and pipeline step signatures were stored with non-ASCII escaped."""
    current, earlier = json_hash_forms(NON_ASCII)
    assert current == json_hash(NON_ASCII)
    assert earlier == _sha16(json.dumps(NON_ASCII, sort_keys=True))  # the earlier helpers' exact formula
    assert current != earlier
    assert len(set(json_hash_forms({"limit": 2, "data_dir": "/tmp/data"}))) == 1  # ASCII: one form


def test_atomic_write_replaces_whole_files_and_keeps_the_old_one_on_failure(tmp_path):
    path = tmp_path / "state.json"
    write_json_atomic(path, {"step": 1, "name": "données"})
    assert json.loads(path.read_text(encoding="utf-8")) == {"step": 1, "name": "données"}
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # like any new file, not mkstemp's 0600
    write_atomic(path, "secret\n", mode=0o600)
    assert path.read_text() == "secret\n" and path.stat().st_mode & 0o777 == 0o600
    write_atomic(path, "still secret\n")  # a replaced file keeps its permissions
    assert path.read_text() == "still secret\n" and path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(TypeError):
        write_atomic(path, b"bytes are refused")  # fails mid-write
    assert path.read_text() == "still secret\n"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary file left behind
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "missing" / "x.json", "{}")
    assert not (tmp_path / "missing").exists()


def test_a_writer_killed_mid_write_leaves_the_old_file_or_the_new_one(tmp_path):
    """A process rewriting a 4 MB file in a loop is SIGKILLed: the file is always one whole version."""
    path = tmp_path / "big.json"
    script = ("import sys; from xplus_release.storage import write_json_atomic\n"
              "for i in range(10**6): write_json_atomic(sys.argv[1], {'version': i, 'pad': 'x' * (4 << 20)})")
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)])
    try:
        deadline = time.monotonic() + 60
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    data = json.loads(path.read_text())
    assert data["version"] >= 0 and len(data["pad"]) == 4 << 20


def test_step_folders_marked_by_earlier_versions_still_resume(tmp_path):
    """A pipeline's ``step.json`` holds its step signature; one written with the earlier (ASCII-escaped)
    hash form is accepted, a signature of other parameters is still refused."""
    folder = tmp_path / "données"  # the input path, part of unify's signature, is not ASCII
    folder.mkdir()
    (folder / "p.yaml").write_text(f"output: {tmp_path / 'out'}\ninputs:\n  - {{format: tsv, path: a.tsv, "
                                   "src: en, trg: zh}\nsteps: [unify, clean]\n", encoding="utf-8")
    config = load_pipeline(folder / "p.yaml")
    runner.claim_step_folders(config)
    earlier = runner._signatures(config, 1)
    assert earlier != runner._signatures(config, 0)
    markers = [Path(runner.step_dir(config.output, step)) / "step.json" for step in config.steps.names()]
    for marker, signature in zip(markers, earlier, strict=True):
        marker.write_text(json.dumps({**json.loads(marker.read_text()), "signature": signature}))
    runner.claim_step_folders(config)  # resumes
    marker = json.loads(markers[0].read_text())
    markers[0].write_text(json.dumps({**marker, "signature": "0" * 16}))
    with pytest.raises(ConfigError, match="was made with other parameters"):
        runner.claim_step_folders(config)
