"""Inputs of the model-card tests, written in the formats ``xplus_release.model_cards`` documents.

The eval suites and the trainer that produce these files for real live in other parts of the package; the
fixtures write the same shapes (run.json + scores.json through ``RunFolder``, a training.yaml) so that the
card code is tested against exactly what it claims to read.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from xplus_release.runs import RunFolder

RUN_SCORES = {
    "translation": {
        "aggregates": {
            "en-x": {"spbleu": 0.73, "xcomet": 0.1342},
            "x-en": {"spbleu": 1.25, "xcomet": 0.1587},
            "x-sw": {"spbleu": 0.41, "xcomet": 0.1021},
        },
        "directions": {
            "en-zh": {"spbleu": 0.52, "xcomet": 0.12},
            "zh-en": {"spbleu": 1.31, "xcomet": 0.17},
            "en-sw": {"spbleu": 0.93, "xcomet": 0.11},
            "sw-en": {"spbleu": 1.19, "xcomet": 0.15},
        },
        "signatures": {"spbleu": "nrefs:1|case:mixed|eff:no|tok:flores200|smooth:exp|version:2.6.0"},
    },
    "multilingual": {
        "tasks": {
            "xnli": {"metric": "acc", "value": 0.3467, "stderr": 0.0123},
            "xcopa": {"acc": 0.52, "acc_norm": 0.54},
        },
    },
    "reasoning": {
        "tasks": {
            "mgsm": {"metric": "exact_match", "value": 0.0625},
            "my_local_task": {"metric": "score", "value": 3.5},
        },
        "elapsed_s": 12.5,
    },
}

TRAINING_YAML = """\
# xplus-train run training.yaml
base_model: Qwen/Qwen3-8B
method: layer_selective
stages:
  - name: stage1
    layers: [0, 1, 2, 3]
    epochs: 1
    learning_rate: 1.0e-5
  - name: stage2
    layers: [21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35]
    epochs: 1
    learning_rate: 1.0e-5
lr_scheduler: cosine
warmup_ratio: 0.03
data:
  train: [LLaMAX/xplus-parallel-17langs, data/extra.jsonl]
"""

# The provenance shape: the recipe as run under "recipe", the stage that wrote the folder under "stage".
PROVENANCE_YAML = """\
# Provenance of this model: the xplus-train recipe and stage that produced it.
stage:
  index: 2
  name: top-15
  method: layer_selective
  trainable_layers: [21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35]
  steps: 1200
  final_train_loss: 0.912
recipe_hash: 3f2a9c
recipe:
  model: Qwen/Qwen3-8B
  data: data/xplus-pairs.jsonl
  precision: bf16
  global_batch_size: 16
  optim: {epochs: 1, learning_rate: 1.0e-5, min_learning_rate: 2.0e-6, warmup_ratio: 0.03}
  stages:
    - {name: bottom-4, bottom: 4}
    - {name: top-15, top: 15, skip: [20]}
"""


def write_run(path: Path, model: str, scores: dict = RUN_SCORES) -> Path:
    run = RunFolder.open(path, model)
    for suite, suite_scores in scores.items():
        run.write_scores(suite, suite_scores)
    return path


def copy_model(source: str | Path, dest: Path, with_recipe: bool = True) -> Path:
    """A publishable copy of a Hugging Face model folder (the tiny model), with the trainer's training.yaml."""
    shutil.copytree(source, dest)
    for stray in [p for p in dest.iterdir() if p.name.startswith(".") or p.suffix in (".txt", ".lock")]:
        stray.unlink() if stray.is_file() else shutil.rmtree(stray)
    if with_recipe:
        (dest / "training.yaml").write_text(TRAINING_YAML, encoding="utf-8")
    return dest
