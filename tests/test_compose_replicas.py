"""``compose.replicas.yaml`` run for real on this machine's podman with Debian's podman-compose, and checked
as podman-compose reads it.

The whole deployment (slow-marked): Redis and HAProxy from ``scripts/build_image.sh redis|haproxy``, the
xplus-serve CPU image (built once per session, shared with ``tests/test_container.py``) as both fronts and,
through ``VLLM_IMAGE``/``VLLM_ENTRYPOINT``, as the vLLM server on ``xplus-tiny``. Traffic goes through the
balancer only: translations with a key of the keys file, a requests-per-minute limit held across both
fronts, ``/v1/usage`` equal whichever front answers, a front stopped while the other keeps answering, and
``podman-compose down`` leaving no container, volume or network behind. The compose file is run from a
copy in a temporary folder (with the HAProxy file beside it, as in the repository) so that its ``./keys``
volume is the test's own.

The quick checks: podman-compose parses the file, substitutes the image variables and refuses a missing
secret, and every service becomes one ``podman run`` with the fronts pointed at vLLM and Redis
(``--podman-path /bin/echo`` prints the podman commands instead of running them; its own ``--dry-run``
still creates volumes and networks); the HAProxy file names every front and checks its health with a key.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from helpers.podman import inspect, logs, podman, podman_flags

from xplus_release.engines.server import free_port
from xplus_release.engines.vllm_cli import vllm_command
from xplus_release.serve.keys import KeyEntry, KeyLimits, KeysFile, hash_key, save_keys

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
    assert '--entrypoint ["vllm", "serve"]' in runs["vllm"]  # the official image's own server
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


def test_vllm_cli_runs_vllms_server_on_every_interface_for_a_registered_model(tiny_model, monkeypatch):
    """The vLLM service's entry point when it runs the xplus-serve image: the official image's arguments in,
    vLLM's server on the resolved folder out."""
    monkeypatch.setenv("VLLM_PORT", "8123")
    command = vllm_command(["--model", "xplus-tiny", "--served-model-name", "served", "--max-num-seqs", "4"])
    assert command[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    options = dict(zip(command[3::2], command[4::2], strict=False))
    assert options["--model"] == tiny_model.path and options["--served-model-name"] == "served"
    assert options["--host"] == "0.0.0.0" and options["--port"] == "8123" and options["--dtype"] == "float32"
    assert command[-2:] == ["--max-num-seqs", "4"]


def test_vllm_cli_refuses_an_unknown_model_in_one_line():
    done = subprocess.run([sys.executable, "-m", "xplus_release.engines.vllm_cli", "--model", "no-such-model"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: unknown model 'no-such-model'") and done.stderr.count("\n") == 1


# --- the whole deployment on podman ---------------------------------------------------------------------

VLLM_KEY = "compose-vllm-secret"
KEYS = {"health": 10_000, "ok": 1000, "four": 4}  # key name -> requests per minute
FRONTS = ("front-1", "front-2")
TEXT = {"q": "The cat sat on the mat.", "source": "en", "target": "de", "max_tokens": 8}


def _secret(name: str) -> str:
    return f"compose-{name}-key"


def _auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {_secret(name)}"}


def _run_args() -> list[str]:
    """This machine's podman options for every container (``scripts/container/podman-flags`` without its host
    network: the compose network is the point), vLLM's shared memory (podman-compose 1.0.3 drops ``ipc:``)
    and the test settings of a CPU vLLM."""
    options = [flag for flag in podman_flags() if not flag.startswith("--network")]
    options += ["--shm-size=1g", "--env=VLLM_CPU_KVCACHE_SPACE=1", "--env=HF_HUB_OFFLINE=1"]
    return [f"--podman-run-args={option}" for option in options]


class Stack:
    """One ``podman-compose -p PROJECT`` deployment of a copy of compose.replicas.yaml in ``folder``."""

    def __init__(self, folder: Path, serve_image: str):
        self.folder, self.project = folder, f"xplus-replicas-{uuid.uuid4().hex[:8]}"
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.env = {**os.environ, "VLLM_API_KEY": VLLM_KEY, "XPLUS_HEALTHCHECK_KEY": _secret("health"),
                    "XPLUS_SERVE_IMAGE": serve_image, "VLLM_IMAGE": serve_image,
                    "VLLM_ENTRYPOINT": "tini -- python3 -m xplus_release.engines.vllm_cli",
                    "XPLUS_MODEL": "xplus-tiny", "XPLUS_SERVED_NAME": "xplus-tiny",
                    "REDIS_IMAGE": "localhost/xplus-redis:bookworm", "HAPROXY_IMAGE": "localhost/xplus-haproxy:bookworm",
                    "XPLUS_PUBLISH": f"127.0.0.1:{port}"}

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        done = subprocess.run(["podman-compose", "-f", str(self.folder / COMPOSE.name), "-p", self.project, *args],
                              capture_output=True, text=True, timeout=timeout, env=self.env, cwd=self.folder,
                              check=False)
        assert done.returncode == 0, f"podman-compose {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"

    def leftovers(self) -> dict[str, list[str]]:
        label = f"label=io.podman.compose.project={self.project}"
        containers = podman("ps", "--all", "--quiet", "--filter", label).stdout.split()
        volumes = podman("volume", "ls", "--quiet").stdout.split()
        networks = podman("network", "ls", "--quiet", "--filter", f"name={self.project}").stdout.split()
        return {"containers": containers, "networks": networks,
                "volumes": [v for v in volumes if v.startswith(self.project) or v in self.anonymous]}

    def remember_anonymous_volumes(self) -> None:
        """The unnamed volumes of the image's VOLUME /cache, which ``down`` must remove too."""
        self.anonymous = {mount["Name"] for service in ("vllm", *FRONTS)
                          for mount in inspect(self.container(service))["Mounts"] if mount["Type"] == "volume"}

    def force_remove(self) -> None:
        """Whatever a failed test left: containers, volumes, network."""
        left = self.leftovers()
        for kind, names in (("container", left["containers"]), ("volume", left["volumes"]),
                            ("network", left["networks"])):
            if names:
                podman(kind, "rm", "--force", *names, check=False, timeout=300)

    def wait_ready(self, timeout: float = 600) -> None:
        """Both fronts healthy (the image's HEALTHCHECK) and the balancer through to one of them."""
        deadline = time.monotonic() + timeout
        for front in FRONTS:
            while podman("healthcheck", "run", self.container(front), check=False).returncode != 0:
                assert time.monotonic() < deadline, f"{front} never became healthy:\n{self.logs()}"
                time.sleep(3)
        self.wait_balancer({front: "UP" for front in FRONTS}, deadline)

    def wait_balancer(self, states: dict[str, str], deadline: float) -> None:
        """Until HAProxy's health checks have put each front in the state given (UP or DOWN)."""
        while (seen := {front: self.balancer_state(front) for front in states}) != states:
            assert time.monotonic() < deadline, f"HAProxy: {seen}, not {states}:\n{self.logs()}"
            time.sleep(1)

    def balancer_state(self, front: str) -> str:
        """A front's last state in HAProxy's log; UP while its checks have never failed."""
        changes = [line for line in logs(self.container("balancer")).splitlines()
                   if f"fronts/{front} is UP" in line or f"fronts/{front} is DOWN" in line]
        return "DOWN" if changes and f"{front} is DOWN" in changes[-1] else "UP"

    def get(self, path: str, key: str) -> httpx.Response:
        try:
            return httpx.get(self.url + path, headers=_auth(key), timeout=30)
        except httpx.TransportError:
            return httpx.Response(599)

    def translate(self, key: str) -> httpx.Response:
        return httpx.post(f"{self.url}/v1/translate", json=TEXT, headers=_auth(key), timeout=120)

    def logs(self) -> str:
        return "\n".join(f"--- {service}\n{logs(self.container(service))[-2000:]}"
                         for service in ("vllm", *FRONTS, "balancer", "redis"))


def _copy_deployment(folder: Path) -> None:
    """The compose file, the HAProxy file where it mounts it from, and a keys file the fronts (uid 10001) read."""
    shutil.copy2(COMPOSE, folder / COMPOSE.name)
    (folder / "scripts" / "container").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "container" / "haproxy-replicas.cfg", folder / "scripts" / "container")
    (folder / "keys").mkdir()
    keys = folder / "keys" / "keys.yaml"
    save_keys(keys, KeysFile(keys=tuple(
        KeyEntry(name=name, sha256=hash_key(_secret(name)), limits=KeyLimits(requests_per_minute=rpm))
        for name, rpm in KEYS.items())))
    keys.chmod(0o644)  # save_keys writes 0600 for its owner (root here), not the fronts' user


def _build_service_images() -> None:
    for target in ("redis", "haproxy"):
        build = subprocess.run(["bash", "scripts/build_image.sh", target], cwd=ROOT, capture_output=True, text=True,
                               timeout=900, check=False)
        assert build.returncode == 0, f"build_image.sh {target}:\n{build.stderr[-3000:]}"


@pytest.fixture(scope="module")
def stack(serve_image, tmp_path_factory):
    if shutil.which("podman-compose") is None:
        pytest.fail("podman-compose is missing; install Debian's podman-compose (bash scripts/install.sh does)")
    _build_service_images()
    deployment = Stack(tmp_path_factory.mktemp("compose"), serve_image)
    _copy_deployment(deployment.folder)
    deployment.anonymous = set()
    try:
        deployment.compose(*_run_args(), "up", "-d")
        deployment.remember_anonymous_volumes()
        deployment.wait_ready()
        yield deployment
    finally:
        deployment.force_remove()


def _fronts_that_served(deployment: Stack, request: str, key: str) -> set[str]:
    """Which fronts' access logs show the request (``"POST /v1/translate" 200``) for the key."""
    served = set()
    for front in FRONTS:
        output = podman("logs", deployment.container(front))
        if any(request in line and f"key={key}" in line for line in (output.stdout + output.stderr).splitlines()):
            served.add(front)
    return served


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_translations_go_through_the_balancer_with_a_key_of_the_file(stack):
    replies = [stack.translate("ok") for _ in range(4)]
    assert [reply.status_code for reply in replies] == [200] * 4, replies[-1].text
    assert all(isinstance(reply.json()["translatedText"], str) for reply in replies)
    assert stack.translate("nobody").status_code == 401
    assert _fronts_that_served(stack, '"POST /v1/translate" 200', "ok") == set(FRONTS)  # the balancer used both


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_a_key_limit_holds_across_both_fronts(stack):
    statuses = [stack.translate("four").status_code for _ in range(6)]
    assert statuses == [200] * 4 + [429] * 2
    assert _fronts_that_served(stack, '"POST /v1/translate" 200', "four") == set(FRONTS)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_usage_is_the_same_whichever_front_answers(stack):
    time.sleep(1)  # usage reaches Redis in batches every 0.2 s
    answers = [stack.get("/v1/usage", "four") for _ in range(6)]
    assert {answer.status_code for answer in answers} == {200}
    # all but the minute's characters, which refill as time passes
    counts = [{part: answer.json()[part] for part in ("total", "day", "month", "requests_in_flight")}
              for answer in answers]
    assert all(count == counts[0] for count in counts)
    assert counts[0]["total"]["requests"] == 6 and counts[0]["total"]["errors"] == {"429": 2}
    assert _fronts_that_served(stack, '"GET /v1/usage" 200', "four") == set(FRONTS)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_requests_go_on_through_the_other_front_when_one_stops(stack):
    podman("stop", "--time", "30", stack.container("front-1"), timeout=90)
    assert not inspect(stack.container("front-1"))["State"]["Running"]
    # out of the rotation after two failed checks, 5 s apart
    stack.wait_balancer({"front-1": "DOWN", "front-2": "UP"}, time.monotonic() + 60)
    statuses = [stack.translate("ok").status_code for _ in range(6)]
    assert statuses == [200] * 6, stack.logs()


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_compose_down_leaves_nothing_behind(stack):
    assert stack.leftovers()["networks"] == [f"{stack.project}_default"]
    stack.compose("--podman-rm-args=--volumes", "down", "--volumes")
    left = stack.leftovers()
    assert left["containers"] == [] and left["volumes"] == []
    # Debian's podman-compose 1.0.3 does not remove the project network on down (later releases do)
    podman("network", "rm", f"{stack.project}_default")
    assert stack.leftovers() == {"containers": [], "networks": [], "volumes": []}
