"""Cards of the released models (LLaMAX/Qwen3-XPlus-8B and -14B), filled from the paper's reported numbers.

``xplus-publish card --paper LLaMAX/Qwen3-XPlus-8B --output DIR`` regenerates one; the committed copies
under ``released/`` are these outputs (a test checks they are up to date).
"""

from __future__ import annotations

from pathlib import Path

from xplus_release.errors import UnknownModelError
from xplus_release.model_cards.card import PAPER_DATASETS, CardInputs
from xplus_release.model_cards.paper_results import paper_results
from xplus_release.model_cards.training_recipe import TrainingRecipe, parse_training_recipe
from xplus_release.registry import get_spec

RELEASED_MODELS = ("LLaMAX/Qwen3-XPlus-8B", "LLaMAX/Qwen3-XPlus-14B")

# The paper's recipe (§3.2 and Appendix A.4), in the trainer's training.yaml shape.
PAPER_RECIPE_YAML = """\
method: layer_selective
stages:
  - name: stage 1 (bottom layers)
    bottom: 4
    epochs: 1
  - name: stage 2 (top layers)
    top: 15
    epochs: 1
optimizer:
  learning_rate: 1.0e-5
  lr_scheduler: cosine
  min_learning_rate: 2.0e-6
  warmup_ratio: 0.03
precision: bf16
per_device_batch_size: 1
gradient_accumulation_steps: 2
hardware: 8x NVIDIA H800
data:
  sources: [allenai/nllb, Helsinki-NLP/opus-100]
  languages: [en, zh, hu, es, fr, de, ru, ja, th, sw, bn, te, ar, ko, vi, cs, sr]
"""


# Released models whose card shows the shipped xplus-train recipe (installed beside this package as
# xplus_release/training/recipes/): the paper gives no layer list for 14B, so its card shows the recipe
# the trainer runs rather than a summary of the paper's wording.
SHIPPED_RECIPES = {"LLaMAX/Qwen3-XPlus-14B": "qwen3-xplus-14b.yaml"}


def paper_recipe(base_model: str | None) -> TrainingRecipe:
    text = (f"base_model: {base_model}\n" if base_model else "") + PAPER_RECIPE_YAML
    return parse_training_recipe(text, "the paper's recipe (arXiv:2510.09189, §3.2 and Appendix A.4)")


def shipped_recipe(file_name: str) -> TrainingRecipe:
    path = Path(__file__).resolve().parents[1] / "training" / "recipes" / file_name
    return parse_training_recipe(path.read_text(encoding="utf-8"), f"training/recipes/{file_name}")


def paper_card_inputs(model: str) -> CardInputs:
    """Card inputs of a model the paper reports.

    Raises:
        UnknownModelError: ``model`` is not a released Qwen3-XPlus model (the paper's baselines are not ours to card).
    """
    if model not in RELEASED_MODELS:
        raise UnknownModelError(
            f"cards from the paper's numbers are for the released models ({', '.join(RELEASED_MODELS)}), "
            f"not {model!r}; for another model use --eval-run"
        )
    results = paper_results(model)
    base = get_spec(model).base_model
    recipe = shipped_recipe(SHIPPED_RECIPES[model]) if model in SHIPPED_RECIPES else paper_recipe(base)
    return CardInputs(model_id=model, results=results, recipe=recipe, base_model=base,
                      datasets=tuple(PAPER_DATASETS))
