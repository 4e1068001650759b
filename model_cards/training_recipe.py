"""Reader of the trainer's provenance ``training.yaml`` (written by ``xplus-train`` beside the weights).

Accepted format: a YAML mapping. The parts a card shows by name::

    base_model: Qwen/Qwen3-8B            # or model: {name|path: ...}
    method: layer_selective              # or full / lora
    stages:                              # one entry per stage, in order
      - name: stage1
        layers: [0, 1, 2, 3]             # or "0-3", or {bottom: 4}
        epochs: 1
        learning_rate: 1.0e-5
    data: {train: [LLaMAX/..., data/train.jsonl], languages: [en, zh, ...]}

Every other key is kept and listed as a hyperparameter (nested keys dotted), so nothing recorded is lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from xplus_release.errors import ConfigError

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class TrainingRecipe:
    path: str
    raw: dict
    text: str
    base_model: str | None = None
    method: str | None = None
    stages: list[dict] = field(default_factory=list)
    hyperparameters: dict[str, object] = field(default_factory=dict)
    datasets: list[str] = field(default_factory=list)


def read_training_recipe(path: str | Path) -> TrainingRecipe:
    """Read ``training.yaml``.

    Raises:
        ConfigError: the file is not YAML, not a mapping, or its ``stages`` is not a list of mappings.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML ({str(err).splitlines()[0]}); fix it or pass another --training-yaml") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} is not a YAML mapping; pass the training.yaml that xplus-train wrote")
    stages = raw.get("stages") or []
    if not isinstance(stages, list) or not all(isinstance(s, dict) for s in stages):
        raise ConfigError(f"{path}: 'stages' must be a list of mappings; pass the training.yaml that xplus-train wrote")
    return TrainingRecipe(
        path=str(path), raw=raw, text=text, base_model=_base_model(raw), method=_str_or_none(raw.get("method")),
        stages=stages, hyperparameters=flatten({k: v for k, v in raw.items() if k not in ("stages", "data")}),
        datasets=_hub_datasets(raw.get("data")),
    )


def _base_model(raw: dict) -> str | None:
    for key in ("base_model", "model"):
        value = raw.get(key)
        if isinstance(value, dict):
            value = value.get("name") or value.get("name_or_path") or value.get("path")
        if isinstance(value, str) and value:
            return value
    return None


def _str_or_none(value) -> str | None:
    return str(value) if value is not None else None


def flatten(node: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in node.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


def _hub_datasets(data) -> list[str]:
    """Hub dataset ids named anywhere under ``data`` (local paths are not datasets the Hub can link)."""
    found: list[str] = []

    def walk(node) -> None:
        if isinstance(node, str):
            if _HUB_ID.match(node) and not Path(node).suffix and node not in found:
                found.append(node)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(data)
    return found


def describe_layers(layers) -> str:
    """``[0, 1, 2, 3]`` -> ``0-3``; other spellings are shown as written."""
    if isinstance(layers, list) and layers and all(isinstance(x, int) for x in layers):
        ordered = sorted(layers)
        if ordered == list(range(ordered[0], ordered[-1] + 1)):
            return f"{ordered[0]}-{ordered[-1]} ({len(ordered)} layers)"
        return ", ".join(map(str, ordered))
    if isinstance(layers, dict):
        return ", ".join(f"{k} {v}" for k, v in layers.items())
    return str(layers)
