"""One model server for a whole evaluation: start a vLLM server, or attach to ``--endpoint``.

Harnesses (OpenCompass, lm-eval) are clients of an OpenAI-compatible server, so a command that runs one
of their suites evaluates through one; the model is loaded once per command.
"""

from __future__ import annotations

import contextlib
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from xplus_release.engines.base import DEFAULT_CONCURRENCY
from xplus_release.engines.openai_endpoint import OpenAIEndpointEngine, normalise_base_url
from xplus_release.engines.supervisor import SupervisedServer

if TYPE_CHECKING:
    from xplus_release.engines.server import VLLMServer
    from xplus_release.evalsuite.base import RunOptions


@dataclass
class Endpoint:
    base_url: str  # …/v1
    model: str  # served model name
    api_key: str | None
    started_s: float = 0.0  # seconds spent starting a server (0 when attached)
    describe: dict | None = None
    supervisor: SupervisedServer | None = None  # the server this command started (None when attached)

    def engine(self, concurrency: int = DEFAULT_CONCURRENCY) -> OpenAIEndpointEngine:
        return OpenAIEndpointEngine(self.base_url, self.model, api_key=self.api_key, concurrency=concurrency)

    def rerun_after_restarts(self, what: str, attempt: Callable[[], str | None]) -> str | None:
        """Run ``attempt`` (one suite; it returns its error or None). When it failed because the server
        exited under it, wait for the supervisor's restart and run it again: suites write generations as
        they go, so the rerun generates only what is missing.

        Raises:
            EngineGaveUpError: the server exited more often than --max-restarts allows (generations kept).
        """
        while True:
            if self.supervisor is not None:
                self.supervisor.wait_settled()
                self.supervisor.raise_if_failed()
            exits = self.supervisor.exits if self.supervisor else 0
            error = attempt()
            if error is None or self.supervisor is None or self.supervisor.exits == exits:
                return error
            print(f"the vLLM server exited during {what}; resuming {what} once it is back", file=sys.stderr)


@contextlib.contextmanager
def serve_or_attach(run: RunOptions) -> Iterator[Endpoint]:
    """Attach to ``run.endpoint`` (checking it serves ``run.model``) or start a vLLM server for the run.

    A server it starts is supervised: restarted when it exits, within ``run.max_restarts`` (see
    ``Endpoint.rerun_after_restarts``).

    Raises:
        EndpointError: the endpoint is unreachable or serves another model (the message names what it serves).
        ServerStartError: the vLLM server exited or never became healthy on its first start.
        UnknownModelError, MissingAssetError: --model cannot be resolved to weights on this machine.
    """
    if run.endpoint:
        base_url = normalise_base_url(run.endpoint)
        endpoint = Endpoint(base_url, run.model, run.api_key,
                            describe={"kind": "openai", "base_url": base_url})
        endpoint.engine().check()
        yield endpoint
        return
    from xplus_release.registry import resolve_model

    api_key = secrets.token_hex(16)  # the server lives only as long as this command: a throwaway key
    model = resolve_model(run.model, max_model_len=run.max_model_len)  # before any start: a missing model is one line
    start = time.perf_counter()
    print(f"starting a vLLM server for {model.name} ...", file=sys.stderr)
    server = command_server(run, model, api_key)
    with SupervisedServer(server, max_restarts=run.max_restarts) as supervisor:
        yield Endpoint(server.base_url, model.name, api_key, started_s=time.perf_counter() - start,
                       describe=server.describe(), supervisor=supervisor)


def command_server(run: RunOptions, model, api_key: str | None) -> VLLMServer:
    """The vLLM server a command starts for ``model`` (a ``ResolvedModel``): ``--tensor-parallel-size``
    GPUs per replica, ``--data-parallel-size`` replicas (vLLM's own data parallelism behind one port)."""
    from xplus_release.engines.server import VLLMServer

    return VLLMServer(model, api_key=api_key, tensor_parallel_size=run.tensor_parallel_size,
                      data_parallel_size=run.data_parallel_size, startup_timeout=run.startup_timeout)
