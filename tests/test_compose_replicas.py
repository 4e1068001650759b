"""``compose.replicas.yaml`` as podman-compose (Debian's) reads it, and its HAProxy configuration.

Running the whole deployment (an image build, vLLM, Redis, HAProxy) does not fit the test budget of this
machine, so this checks what can break without it: podman-compose parses the file, substitutes the image
variables and refuses a missing secret, and every service becomes one ``podman run`` with the fronts pointed
at vLLM and Redis. ``--podman-path /bin/echo`` makes podman-compose print the podman commands instead of
running them (its own ``--dry-run`` still creates volumes and networks).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "compose.replicas.yaml"


def _compose(env: dict[str, str]) -> subprocess.CompletedProcess:
    if shutil.which("podman-compose") is None:
        pytest.fail("podman-compose is missing; install Debian's podman-compose (bash scripts/install.sh does)")
    environment = {k: v for k, v in os.environ.items() if k not in ("VLLM_API_KEY", "XPLUS_HEALTHCHECK_KEY")}
    return subprocess.run(["podman-compose", "--podman-path", "/bin/echo", "--dry-run", "-f", str(COMPOSE),
                           "-p", "xplus-compose-check", "up", "-d"], capture_output=True, text=True, timeout=120,
                          env={**environment, **env}, cwd=ROOT, check=False)


def _runs(output: str) -> dict[str, str]:
    """service name -> its ``podman run`` line."""
    runs = {}
    for line in output.splitlines():
        _, found, rest = line.partition(" run --name=xplus-compose-check_")
        if found:
            runs[rest.split(" ", 1)[0].removesuffix("_1")] = line
    return runs


def test_compose_file_makes_redis_vllm_two_fronts_and_a_balancer():
    done = _compose({"VLLM_API_KEY": "v-secret", "XPLUS_HEALTHCHECK_KEY": "h-key",
                     "REDIS_IMAGE": "localhost/xplus-redis:bookworm"})
    assert done.returncode == 0, done.stderr[-2000:]
    runs = _runs(done.stdout)
    assert sorted(runs) == ["balancer", "front-1", "front-2", "redis", "vllm"]
    assert runs["redis"].split(" redis-server ")[0].endswith("localhost/xplus-redis:bookworm")  # the variable
    assert "docker.io/library/haproxy:" in runs["balancer"]  # the default: the official image
    assert "docker.io/vllm/vllm-openai:" in runs["vllm"] and "-e VLLM_API_KEY=v-secret" in runs["vllm"]
    for front in ("front-1", "front-2"):
        assert "--endpoint http://vllm:8000 --state redis://redis:6379/0" in runs[front]
        assert "-e XPLUS_ENDPOINT_API_KEY=v-secret" in runs[front] and "/keys:ro" in runs[front]
    assert "-p 127.0.0.1:8000:8000" in runs["balancer"] and "haproxy-replicas.cfg" in runs["balancer"]


def test_compose_file_refuses_to_start_without_the_vllm_secret():
    done = _compose({"XPLUS_HEALTHCHECK_KEY": "h-key"})
    assert done.returncode != 0
    assert "a secret the fronts send to vLLM" in done.stderr


def test_haproxy_config_checks_every_front_health_with_the_key():
    config = (ROOT / "scripts" / "container" / "haproxy-replicas.cfg").read_text()
    compose = COMPOSE.read_text()
    servers = [line.split()[1] for line in config.splitlines() if line.strip().startswith("server ")]
    fronts = [line.split(":")[0].strip() for line in compose.splitlines() if line.startswith("  front-")]
    assert servers == fronts == ["front-1", "front-2"]
    assert 'uri /health hdr Authorization "Bearer ${XPLUS_HEALTHCHECK_KEY}"' in config
    if shutil.which("haproxy"):  # Debian's haproxy, when installed, checks the whole file
        check = subprocess.run(["haproxy", "-c", "-f", str(ROOT / "scripts" / "container" / "haproxy-replicas.cfg")],
                               capture_output=True, text=True, env={**os.environ, "XPLUS_HEALTHCHECK_KEY": "k"},
                               check=False)
        assert check.returncode == 0, check.stdout + check.stderr
