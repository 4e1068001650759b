"""Known models and how a model name becomes something an engine can load.

``resolve_model`` takes a registered name (``xplus-tiny``, ``LLaMAX/Qwen3-XPlus-8B``…), a local folder or
any Hugging Face id, and returns a local folder: a hub id is taken from the cache or downloaded before any
engine starts. It never reaches the network when ``HF_HUB_OFFLINE=1``; a model that is neither cached nor
downloadable is one error naming the command that fetches it on a connected machine.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from xplus_release.errors import MissingAssetError, UnknownModelError

THINKING_OFF = {"enable_thinking": False}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelSpec:
    name: str  # what users type, and the served model name
    source: str  # hub id, or "builtin:tiny" for the generated test model
    dtype: str = "bfloat16"
    max_model_len: int | None = 32768  # None: what the model's config allows (vLLM derives it)
    chat_template_kwargs: dict = field(default_factory=lambda: dict(THINKING_OFF))
    base_model: str | None = None  # the instruct model a released model was tuned from
    engine_args: dict = field(default_factory=dict)  # extra vLLM engine arguments (same names as LLM(...))


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        # the released models (two-stage layer-selective translation tuning) and the paper's baselines
        ModelSpec("LLaMAX/Qwen3-XPlus-8B", "LLaMAX/Qwen3-XPlus-8B", base_model="Qwen/Qwen3-8B"),
        ModelSpec("LLaMAX/Qwen3-XPlus-14B", "LLaMAX/Qwen3-XPlus-14B", base_model="Qwen/Qwen3-14B"),
        ModelSpec("Qwen/Qwen3-8B", "Qwen/Qwen3-8B"),
        ModelSpec("Qwen/Qwen3-14B", "Qwen/Qwen3-14B"),
        # random weights, for tests and smoke runs (its outputs are noise); compiling a 2M-parameter model
        # costs more start-up time than it could ever save
        ModelSpec("xplus-tiny", "builtin:tiny", dtype="float32", max_model_len=2048,
                  engine_args={"enforce_eager": True}),
    )
}


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready to load: ``path`` is a local folder, or a hub id that the engine may download."""

    spec: ModelSpec
    path: str
    revision: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def get_spec(name_or_path: str) -> ModelSpec:
    """The registered spec for a name, or a default spec (Qwen3-style, thinking off) for anything else."""
    if name_or_path in REGISTRY:
        return REGISTRY[name_or_path]
    # an unknown checkpoint (a fine-tune, another backbone): its own dtype and context length
    return ModelSpec(name=name_or_path, source=name_or_path, dtype="auto", max_model_len=None)


def is_test_model(name: str) -> bool:
    """The built-in random-weight model: suites run it on small embedded samples, offline."""
    return get_spec(name).source == "builtin:tiny"


def resolve_model(name_or_path: str, max_model_len: int | None = None) -> ResolvedModel:
    """Turn a model name into a loadable location.

    Raises:
        UnknownModelError: not registered, not a folder, and not of the form ORG/NAME.
        MissingAssetError: a hub id that is not cached and cannot be downloaded (offline, or no Hub).
    """
    spec = get_spec(name_or_path)
    if max_model_len:
        spec = replace(spec, max_model_len=max_model_len)
    if spec.source == "builtin:tiny":
        from xplus_release.tiny import ensure_tiny_model

        path, build_id = ensure_tiny_model()
        return ResolvedModel(spec, str(path), revision=build_id)
    local = Path(spec.source).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise UnknownModelError(f"model folder {local} has no config.json; point --model at a "
                                    "Hugging Face model folder")
        return ResolvedModel(spec, str(local.resolve()))
    if not _HUB_ID.match(spec.source):
        raise UnknownModelError(
            f"unknown model {name_or_path!r}: not a registered name, a folder, or a hub id ORG/NAME. "
            f"Registered: {', '.join(REGISTRY)}"
        )
    return _resolve_hub(spec)


# What an engine loads from a model repo (weights, configs, tokenizer, chat template): not the other
# formats (GGUF, .bin/.pth copies) some repos also carry.
_MODEL_FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "*.jinja"]


def _resolve_hub(spec: ModelSpec) -> ResolvedModel:
    """The cached snapshot, downloaded first when missing and the Hub is allowed, so that an engine never
    starts on a model that is not there (vLLM would fail a minute later with a long traceback).

    Raises:
        MissingAssetError: not cached, and offline or the Hub cannot be reached (one line naming
            ``hf download``).
        UnknownModelError: the Hub has no such repository.
    """
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError

    repo_id = spec.source
    missing = f"model {repo_id} is not in the Hugging Face cache ({constants.HF_HUB_CACHE})"
    fetch = f"fetch it on a connected machine with: hf download {repo_id}"
    try:
        path = snapshot_download(repo_id, local_files_only=True)
    except LocalEntryNotFoundError:
        if hub_offline():
            raise MissingAssetError(f"{missing} and HF_HUB_OFFLINE=1; {fetch}") from None
        try:
            path = snapshot_download(repo_id, allow_patterns=_MODEL_FILES)
        except RepositoryNotFoundError:
            raise UnknownModelError(f"model {repo_id} is not on the Hugging Face Hub (or needs a token: "
                                    "hf auth login); check --model") from None
        except Exception as err:  # noqa: BLE001 - network, proxy, DNS, disk: all mean "not on this machine"
            raise MissingAssetError(
                f"{missing} and the Hub cannot be reached ({type(err).__name__}); {fetch}") from None
    return ResolvedModel(spec, path, revision=Path(path).name)
