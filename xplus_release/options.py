"""The options every command that runs a model shares, declared once: each field is a flag (``add_flags``)
with its default and help here, and commands read them back with ``from_flags``.

``ModelOptions`` says which model and engine (``--model``, ``--endpoint``, ``-tp`` ...); ``ServerOptions``
how a vLLM server the command starts is waited for and restarted. A command takes the fields it needs
(``add_flags(..., exclude=...)``) and the rest keep their defaults.
"""

from __future__ import annotations

import os

from pydantic import Field, field_validator

from xplus_release.config import AtLeastOne, AtLeastZero, Config
from xplus_release.engines.base import DEFAULT_CONCURRENCY, ChatEngine
from xplus_release.engines.supervisor import DEFAULT_MAX_RESTARTS, DEFAULT_WINDOW_S

API_KEY_ENV = "XPLUS_API_KEY"


class ModelOptions(Config):
    """Which model runs, and on what: vLLM in this process, or a client of ``--endpoint``."""

    section = "model"
    model: str = Field("xplus-tiny", description=(
        "registered name (e.g. LLaMAX/Qwen3-XPlus-8B, xplus-tiny), local folder or hub id; the registry name is "
        "the served model name (default: xplus-tiny, a random-weight test model whose outputs are noise)"))
    endpoint: str | None = Field(None, description=(
        "use a running OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1) instead of loading the model in "
        "this process; --model must be its served model name"), json_schema_extra={"metavar": "URL"})
    # validate_default: a default read from the environment when the options are built, not at import
    api_key: str | None = Field(None, validate_default=True,
                                description=f"API key for --endpoint (default: ${API_KEY_ENV})")
    tensor_parallel_size: AtLeastOne = Field(1, description="GPUs per model replica (vLLM)",
                                             json_schema_extra={"short": "-tp"})
    max_model_len: AtLeastOne | None = Field(None, description=(
        "context length (default: the registry's, 32768 for Qwen3)"))
    concurrency: AtLeastOne = Field(DEFAULT_CONCURRENCY, description="requests kept in flight against the server")

    @field_validator("api_key")
    @classmethod
    def _key_from_environment(cls, value: str | None) -> str | None:
        return value if value is not None else os.environ.get(API_KEY_ENV)

    def open_engine(self) -> ChatEngine:
        """A client of ``endpoint`` (checked to serve ``model``), else vLLM in this process.

        Raises:
            EndpointError: the endpoint is unreachable or does not serve the model.
            UnknownModelError, MissingAssetError: no endpoint, and the model is not on this machine.
        """
        from xplus_release.engines import open_engine

        if self.endpoint:
            engine = open_engine(self.model, endpoint=self.endpoint, api_key=self.api_key,
                                 concurrency=self.concurrency)
            engine.check()
            return engine
        return open_engine(self.model, tensor_parallel_size=self.tensor_parallel_size,
                           max_model_len=self.max_model_len)


class ServerOptions(Config):
    """How a vLLM server that the command starts itself is waited for and kept up."""

    section = "server"
    startup_timeout: float = Field(900.0, description="seconds to wait for the vLLM server to answer")
    data_parallel_size: AtLeastOne = Field(1, description=(
        "model replicas of the vLLM server the command starts (vLLM data parallelism, each replica "
        "--tensor-parallel-size GPUs); xplus-eval then sends the translation grid through that server too"),
        json_schema_extra={"short": "-dp"})
    max_restarts: AtLeastZero = Field(DEFAULT_MAX_RESTARTS, description=(
        f"when the vLLM server exits, restart it, at most N times within {DEFAULT_WINDOW_S / 60:.0f} minutes; "
        "past that, exit with status 1 keeping what was done (0: exit on the first crash)"),
        json_schema_extra={"metavar": "N"})
