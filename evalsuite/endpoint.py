"""One model server for a whole evaluation: start a vLLM server, or attach to ``--endpoint``.

Harnesses (OpenCompass, lm-eval) are clients of an OpenAI-compatible server, so a command that runs one
of their suites evaluates through one; the model is loaded once per command.
"""

from __future__ import annotations

import contextlib
import secrets
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from xplus_release.engines.openai_endpoint import OpenAIEndpointEngine, normalise_base_url

if TYPE_CHECKING:
    from xplus_release.evalsuite.common import RunOptions


@dataclass
class Endpoint:
    base_url: str  # …/v1
    model: str  # served model name
    api_key: str | None
    started_s: float = 0.0  # seconds spent starting a server (0 when attached)
    describe: dict | None = None

    def engine(self, concurrency: int = 256) -> OpenAIEndpointEngine:
        return OpenAIEndpointEngine(self.base_url, self.model, api_key=self.api_key, concurrency=concurrency)


@contextlib.contextmanager
def serve_or_attach(run: RunOptions) -> Iterator[Endpoint]:
    """Attach to ``run.endpoint`` (checking it serves ``run.model``) or start a vLLM server for the run.

    Raises:
        EndpointError: the endpoint is unreachable or serves another model (the message names what it serves).
        ServerStartError: the vLLM server exited or never became healthy.
        UnknownModelError, MissingAssetError: --model cannot be resolved to weights on this machine.
    """
    if run.endpoint:
        endpoint = Endpoint(normalise_base_url(run.endpoint), run.model, run.api_key,
                            describe={"kind": "openai", "base_url": normalise_base_url(run.endpoint)})
        endpoint.engine().check()
        yield endpoint
        return
    from xplus_release.engines.server import VLLMServer
    from xplus_release.registry import resolve_model

    api_key = secrets.token_hex(16)  # the server lives only as long as this command: a throwaway key
    model = resolve_model(run.model, max_model_len=run.max_model_len)
    start = time.perf_counter()
    print(f"starting a vLLM server for {model.name} ...", file=sys.stderr)
    with VLLMServer(model, api_key=api_key, tensor_parallel_size=run.tensor_parallel_size,
                    startup_timeout=run.startup_timeout) as server:
        yield Endpoint(server.base_url, model.name, api_key, started_s=time.perf_counter() - start,
                       describe=server.describe())
