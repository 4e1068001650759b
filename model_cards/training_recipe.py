"""Reader of the trainer's provenance ``training.yaml`` (written by ``xplus-train`` beside the weights).

Accepted format: a YAML mapping, either the recipe itself or a provenance record that holds it under
``recipe`` (with the stage that produced the folder under ``stage``). The parts a card shows by name::

    base_model: Qwen/Qwen3-8B            # or model: Qwen/Qwen3-8B, or model: {name|path: ...}
    method: layer_selective              # or full / lora (also read from the stages' or stage's method)
    stages:                              # one entry per stage, in order
      - name: stage1
        layers: [0, 1, 2, 3]             # or "0-3", or {bottom: 4}
        epochs: 1
      - name: top-15
        top: 15                          # or bottom: N; skip: [20] leaves layers out
        skip: [20]
    data: {train: [LLaMAX/..., data/train.jsonl]}   # Hub ids among them become the card's datasets

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
    return parse_training_recipe(path.read_text(encoding="utf-8"), str(path))


def parse_training_recipe(text: str, path: str) -> TrainingRecipe:
    """Parse training.yaml text; ``path`` names it in errors and on the card. Raises ConfigError as above."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML ({str(err).splitlines()[0]}); fix it or pass another --training-yaml") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} is not a YAML mapping; pass the training.yaml that xplus-train wrote")
    recipe = raw["recipe"] if isinstance(raw.get("recipe"), dict) else raw
    stages = recipe.get("stages") or []
    if not isinstance(stages, list) or not all(isinstance(s, dict) for s in stages):
        raise ConfigError(f"{path}: 'stages' must be a list of mappings; pass the training.yaml that xplus-train wrote")
    return TrainingRecipe(
        path=path, raw=raw, text=text, base_model=_base_model(recipe), method=_method(raw, stages),
        stages=stages, hyperparameters=_hyperparameters(raw, recipe), datasets=_hub_datasets(recipe.get("data")),
    )


def _hyperparameters(raw: dict, recipe: dict) -> dict[str, object]:
    """The recipe's settings, then what the provenance record adds (final stage, steps, losses, versions)."""
    skip = ("stages", "data", "base_model", "model", "method")
    found = flatten({k: v for k, v in recipe.items() if k not in skip})
    if recipe is not raw:
        found |= flatten({k: v for k, v in raw.items() if k not in ("recipe", "data")})
    return found


def _method(raw: dict, stages: list[dict]) -> str | None:
    stage = raw.get("stage") if isinstance(raw.get("stage"), dict) else {}
    methods = {str(s["method"]) for s in stages if s.get("method")}
    value = raw.get("method") or (raw.get("recipe") or {}).get("method") or (methods.pop() if len(methods) == 1 else None)
    return _str_or_none(value or stage.get("method"))


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


LAYER_KEYS = ("layers", "bottom", "top", "skip")


def stage_layers(stage: dict) -> str:
    """The layers a stage trains, however the recipe spells them: ``0-3 (4 layers)``, ``top 15, skip 20``."""
    if "layers" in stage:
        return describe_layers(stage["layers"])
    parts = [f"{key} {stage[key]}" for key in ("bottom", "top") if key in stage]
    if "skip" in stage:
        skipped = stage["skip"]
        parts.append("skip " + (", ".join(map(str, skipped)) if isinstance(skipped, list) else str(skipped)))
    return ", ".join(parts) or "all"


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
