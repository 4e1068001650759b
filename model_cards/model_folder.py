"""What may leave a model folder: completeness, allow-list and secret checks, and the upload plan.

A folder is uploaded only when it is complete (config, tokenizer, chat template, every safetensors shard
its index names), holds no pickle weights, no secrets (by file name or by content) and nothing outside
``ALLOWED``. ``.cache/huggingface/`` (huggingface_hub's own upload state) and ``.git/`` are skipped.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from xplus_release.errors import ModelFolderError

ALLOWED = (
    "config.json", "generation_config.json", "model.safetensors", "model.safetensors.index.json",
    "model-*-of-*.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json", "vocab.json", "merges.txt", "tokenizer.model", "chat_template.jinja",
    "chat_template.json", "README.md", "training.yaml", "LICENSE", "LICENSE.txt", "NOTICE", ".gitattributes",
)
SKIPPED_DIRS = (".cache/huggingface", ".git")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy")
SECRET_NAMES = (
    ".env", ".env.*", "*.env", "*.pem", "*.key", "*.p12", "*.pfx", "id_rsa*", "id_ed25519*", "id_ecdsa*",
    "token", "*.token", "*_token", "*_token.txt", "token.txt", ".netrc", ".git-credentials", ".pypirc",
    "credentials", "credentials.json", "*secret*",
)
# Token formats that never belong in a public repo (Hugging Face, OpenAI, AWS, GitHub, Slack, private keys).
SECRET_CONTENT = re.compile(
    r"\b(?:hf_[A-Za-z0-9]{30,}|sk-[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36}|github_pat_\w{40,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,})|-----BEGIN [A-Z ]*PRIVATE KEY-----"
)
# In hand-written config (YAML, small JSON) also "api_key: <long value>" and the like.
SECRET_ASSIGNMENT = re.compile(
    r"(?i)(api[_-]?key|secret|password|passwd|access[_-]?token|auth[_-]?token|hf[_-]?token)[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9_\-/+]{16,}"
)
_CONFIG_SUFFIXES = (".yaml", ".yml", ".md", ".txt", ".jinja")
_SCAN_LIMIT = 64 * 2**20  # tokenizer.json of large vocabularies is ~10 MB


@dataclass(frozen=True)
class PlannedFile:
    path: str  # relative, POSIX
    size: int


def list_folder(folder: Path) -> list[str]:
    """Every file under ``folder`` (relative POSIX paths), without huggingface_hub's upload state and .git."""
    files = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if any(rel == d or rel.startswith(d + "/") for d in SKIPPED_DIRS):
            continue
        if path.is_file() or path.is_symlink():
            files.append(rel)
    return files


def check_model_folder(folder: str | Path, ignore: tuple[str, ...] = ()) -> list[PlannedFile]:
    """Check a folder before upload and return what would be uploaded.

    ``ignore`` globs (matched against relative paths) leave files out of the upload; a secret is refused
    even in an ignored file, since it should not sit in a folder that is being published.

    Raises:
        ModelFolderError: not a folder; a secret, pickle weights or a file outside the allow-list; or a
            missing config, tokenizer, chat template or safetensors shard.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFolderError(f"{folder} is not a folder; pass --model-dir the folder xplus-train wrote")
    every_file = list_folder(folder)
    _refuse_secrets(folder, every_file)
    files = [rel for rel in every_file if not is_ignored(rel, ignore)]
    _refuse_pickles(folder, files)
    _refuse_strays(folder, files)
    _require_complete(folder, set(files))
    return [PlannedFile(rel, (folder / rel).stat().st_size) for rel in files]


def is_ignored(rel: str, ignore: tuple[str, ...]) -> bool:
    """``rel`` matches a glob, or lies under a folder that does (``checkpoints`` ignores ``checkpoints/...``)."""
    parents = [rel] + [p.as_posix() for p in Path(rel).parents if p.as_posix() != "."]
    return any(fnmatch.fnmatch(path, pattern.rstrip("/")) for pattern in ignore for path in parents)


def _refuse_secrets(folder: Path, files: list[str]) -> None:
    named = [rel for rel in files if any(fnmatch.fnmatch(Path(rel).name.lower(), p) for p in SECRET_NAMES)]
    if named:
        raise ModelFolderError(f"{folder} holds secrets ({', '.join(named)}); move them out of the folder before publishing")
    for rel in files:
        if not rel.lower().endswith((".safetensors", *PICKLE_SUFFIXES)):  # tensors, not text
            scan_for_secrets((folder / rel).read_bytes()[:_SCAN_LIMIT].decode("utf-8", "replace"), f"{folder / rel}")


def scan_for_secrets(text: str, where: str, assignments: bool | None = None) -> None:
    """Raises ModelFolderError if ``text`` holds a token or key (``where`` names it in the message)."""
    if assignments is None:
        assignments = where.endswith(_CONFIG_SUFFIXES) or len(text) < 256 * 1024
    found = SECRET_CONTENT.search(text) or (SECRET_ASSIGNMENT.search(text) if assignments else None)
    if found:
        line = text.count("\n", 0, found.start()) + 1
        raise ModelFolderError(f"{where}:{line} looks like a secret (token or key); remove it before publishing")


def _refuse_pickles(folder: Path, files: list[str]) -> None:
    pickles = [rel for rel in files if rel.lower().endswith(PICKLE_SUFFIXES)]
    if pickles:
        raise ModelFolderError(
            f"{folder} holds pickle weights ({', '.join(pickles)}); publish safetensors only "
            "(save_pretrained(..., safe_serialization=True)) and delete these"
        )


def _refuse_strays(folder: Path, files: list[str]) -> None:
    strays = [rel for rel in files if "/" in rel or not any(fnmatch.fnmatch(rel, p) for p in ALLOWED)]
    if strays:
        raise ModelFolderError(
            f"{folder} holds files outside the upload allow-list ({', '.join(strays[:8])}"
            f"{', ...' if len(strays) > 8 else ''}); move them out of the folder, or leave them out with --ignore GLOB"
        )


def _require_complete(folder: Path, files: set[str]) -> None:
    missing = []
    if "config.json" not in files:
        missing.append("config.json")
    if not ({"tokenizer.json", "tokenizer.model"} & files or {"vocab.json", "merges.txt"} <= files):
        missing.append("tokenizer (tokenizer.json)")
    if "tokenizer_config.json" not in files:
        missing.append("tokenizer_config.json")
    elif not ({"chat_template.jinja", "chat_template.json"} & files or _has_inline_template(folder)):
        missing.append("chat template (chat_template.jinja)")
    missing += _missing_weights(folder, files)
    if missing:
        raise ModelFolderError(
            f"{folder} is incomplete: missing {', '.join(missing)}; save the model and tokenizer with save_pretrained"
        )


def _has_inline_template(folder: Path) -> bool:
    return bool(_read_json(folder / "tokenizer_config.json").get("chat_template"))


def _missing_weights(folder: Path, files: set[str]) -> list[str]:
    if "model.safetensors.index.json" in files:
        weight_map = _read_json(folder / "model.safetensors.index.json").get("weight_map") or {}
        shards = sorted(set(weight_map.values()))
        if not shards:
            return ["weight_map in model.safetensors.index.json"]
        return [f"shard {s}" for s in shards if s not in files]
    return [] if "model.safetensors" in files else ["weights (model.safetensors)"]


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ModelFolderError(f"{path} is not valid JSON ({err}); save the model again with save_pretrained") from None
    return data if isinstance(data, dict) else {}


def model_fingerprint(folder: str | Path) -> str:
    """Identity of a model folder: its config plus a sample of every safetensors file's bytes.

    Reads ~64 KiB per weight file, so comparing two multi-GB folders is instant; two checkpoints of one
    architecture (a base model and its tuned version) differ in the sampled tensor data.
    """
    folder = Path(folder)
    digest = hashlib.sha256(json.dumps(_read_json(folder / "config.json"), sort_keys=True).encode())
    for path in sorted(folder.glob("*.safetensors")):
        size = path.stat().st_size
        digest.update(f"{path.name}:{size}".encode())
        with open(path, "rb") as handle:
            for i in range(16):
                handle.seek(size * i // 16)
                digest.update(handle.read(4096))
    return digest.hexdigest()
