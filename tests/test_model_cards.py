"""Model cards: metadata that parses back with huggingface_hub, model-index values equal to the scores they
came from, the released models' cards from the paper's numbers, and tolerant readers of the run folder and
training.yaml formats (written by fixtures in ``publish_fixtures``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from publish_fixtures import PROVENANCE_YAML, RUN_SCORES, TRAINING_YAML, write_run

from xplus_release.errors import ConfigError, RunFolderError
from xplus_release.languages import PAPER_CODES
from xplus_release.model_cards.cli import main
from xplus_release.model_cards.run_results import (
    other_numbers,
    read_run,
    task_scores,
    translation_aggregates,
    translation_directions,
)
from xplus_release.model_cards.training_recipe import read_training_recipe, stage_layers
from xplus_release.paper import load_table

RELEASED = Path(__file__).parents[1] / "model_cards" / "released"


def card_results(card: ModelCard) -> dict[tuple[str, str | None, str], float]:
    """{(dataset type, dataset config, metric type): value} of a parsed card's model-index."""
    return {(r.dataset_type, r.dataset_config, r.metric_type): r.metric_value for r in card.data.eval_results}


def write_card(tmp_path: Path, argv: list[str]) -> ModelCard:
    out = tmp_path / "card"
    assert main(["card", *argv, "--output", str(out)]) == 0
    return ModelCard.load(out / "README.md")


def test_run_card_parses_back_and_its_model_index_equals_the_run(tmp_path):
    run = write_run(tmp_path / "run", "xplus-tiny")
    (tmp_path / "training.yaml").write_text(TRAINING_YAML)
    card = write_card(tmp_path, ["--eval-run", str(run), "--model-id", "me/xplus-tiny",
                                 "--training-yaml", str(tmp_path / "training.yaml")])
    data = card.data
    assert data.language == list(PAPER_CODES) and data.license == "apache-2.0"
    assert (data.library_name, data.pipeline_tag, data.base_model) == ("transformers", "text-generation", "Qwen/Qwen3-8B")
    assert data.datasets == ["LLaMAX/xplus-parallel-17langs"]  # local data/extra.jsonl is not a Hub dataset
    assert "translation" in data.tags and data.model_name == "xplus-tiny"
    expected = {("facebook/flores", direction, metric): value
                for direction, metrics in RUN_SCORES["translation"]["aggregates"].items() for metric, value in metrics.items()}
    expected |= {
        ("facebook/xnli", None, "accuracy"): 0.3467,
        ("cambridgeltl/xcopa", None, "accuracy"): 0.52, ("cambridgeltl/xcopa", None, "acc_norm"): 0.54,
        ("LLaMAX/BenchMAX_Math", None, "exact_match"): 0.0625, ("my_local_task", None, "score"): 3.5,
    }
    assert card_results(card) == expected
    assert all(r.source_url is None for r in data.eval_results)  # measured, not quoted
    text = card.text
    assert "| XNLI | accuracy | 34.67 ± 1.23 | 42.44 |" in text  # run in %, beside the base model's paper number
    assert "| x→sw | 0.41 | 10.21 | 3.49 | 12.52 |" in text
    assert "| stage2 | 21-35 (15 layers) | 1 | 1e-05 |" in text
    assert "| elapsed_s | 12.5 |" in text
    assert "tok:flores200" in text and "arXiv:2510.09189" in text and "/v1/translate" in text
    assert str(tmp_path) not in str(card)  # no local paths in a public card
    assert "{{" not in str(card) and "{%" not in str(card)  # the template is fully rendered


def test_run_of_a_released_model_shows_the_papers_numbers_beside(tmp_path):
    scores = {"translation": {"aggregates": {"en-x": {"spbleu": 33.1, "xcomet": 0.861}}},
              "multilingual": {"tasks": {"xnli": {"metric": "acc", "value": 0.451}}}}
    run = write_run(tmp_path / "run", "LLaMAX/Qwen3-XPlus-8B", scores)
    card = write_card(tmp_path, ["--eval-run", str(run)])
    assert card.data.base_model == "Qwen/Qwen3-8B"
    assert "| direction | spBLEU | xCOMET | spBLEU (paper) | xCOMET (paper) | spBLEU (Qwen3-8B, paper) |" in card.text
    assert "| en→x | 33.10 | 86.10 | 32.82 | 85.52 | 28.86 | 80.27 |" in card.text
    assert "| XNLI | accuracy | 45.10 | 44.79 | 42.44 |" in card.text
    assert card_results(card) == {("facebook/flores", "en-x", "spbleu"): 33.1, ("facebook/flores", "en-x", "xcomet"): 0.861,
                                  ("facebook/xnli", None, "accuracy"): 0.451}


@pytest.mark.parametrize("name", ["8B", "14B"])
def test_released_cards_are_the_papers_numbers_and_up_to_date(name, tmp_path):
    model = f"LLaMAX/Qwen3-XPlus-{name}"
    card = write_card(tmp_path, ["--paper", model])
    committed = RELEASED / f"Qwen3-XPlus-{name}" / "README.md"
    assert str(card) == committed.read_text(), f"regenerate with: xplus-publish card --paper {model} --output {committed.parent}"
    assert "Numbers on this card are the paper's reported numbers" in card.text
    rows = [r for t in ("flores_x_to_lang", "flores_lang_to_x") for r in load_table(t) if r["model"] == f"Qwen3-XPlus-{name}"]
    expected = {("gsarti/flores_101", r["direction"], m): float(r[m]) for r in rows for m in ("spbleu", "xcomet")}
    tasks = {r["task"]: float(r["score"]) for r in load_table("multilingual_tasks") if r["model"] == f"Qwen3-XPlus-{name}"}
    results = card_results(card)
    assert {k: v for k, v in results.items() if k[0] == "gsarti/flores_101"} == expected and len(expected) == 28
    assert results[("facebook/xnli", None, "accuracy")] == tasks["XNLI"]
    assert results[("evalplus/humanevalplus", None, "pass@1")] == tasks["HumanEval+"]
    assert len(results) == 28 + len(tasks) == 37
    assert {r.source_url for r in card.data.eval_results} == {"https://arxiv.org/abs/2510.09189"}
    assert card.data.base_model == f"Qwen/Qwen3-{name}"


@pytest.mark.parametrize("model", ["xplus-tiny", "Qwen/Qwen3-8B"])
def test_paper_card_is_only_for_released_models(model, tmp_path, capsys):
    assert main(["card", "--paper", model, "--output", str(tmp_path / "card")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cards from the paper's numbers are for the released models") and err.count("\n") == 1
    assert f"not {model!r}" in err
    assert not (tmp_path / "card").exists()


def test_direction_spellings_are_read_as_short_codes():
    suite = {"aggregates": {"x->en": {"spbleu": 1.0}, "sw→x": {"spbleu": {"score": 2.0, "signature": "nrefs:1"}}},
             "directions": {"eng_Latn-zho_Hans": {"spbleu": 3.0}, "en-sw": {"label": "no numbers"}, "foo-bar": {"spbleu": 4.0}}}
    assert translation_aggregates(suite) == {"x-en": {"spbleu": 1.0}, "sw-x": {"spbleu": 2.0}}
    assert translation_directions(suite) == {"en-zh": {"spbleu": 3.0}, "foo-bar": {"spbleu": 4.0}}


def test_suite_shapes_with_counts_settings_and_failures(tmp_path):
    """Counts, settings and failure notes stored beside the scores are neither metrics nor extra numbers."""
    scores = {
        "translation": {"settings": {"max_tokens": 256, "langs": ["en", "zh"]},
                        "aggregates": {"x-en": {"spbleu": 30.0, "xcomet": 80.0, "directions": 16}},
                        "directions": {"zh-en": {"spbleu": 30.0, "xcomet": 80.0, "empty": 0, "truncated": 1}}},
        "multilingual": {"tasks": {"xnli": {"score": 44.8, "metric": "acc", "signature": {"n_shot": 0},
                                            "languages": {"en": {"score": 50.0, "n": 10, "metrics": {"acc": 0.5}}}}}},
        "reasoning": {"tasks": {"mgsm_oc": {"paper_name": "MGSM", "metric": "accuracy", "score": 50.1,
                                            "datasets": {"mgsm_en": {"accuracy": 50.1}}, "summary": "summary.csv"}},
                      "failed": {"xgpqa": "OpenCompass produced no score"}},
    }
    run = write_run(tmp_path / "run", "xplus-tiny", scores)
    (tmp_path / "training.yaml").write_text("model: xplus-tiny\nstages: [{name: bottom, bottom: 2}]\n")
    card = write_card(tmp_path, ["--eval-run", str(run), "--training-yaml", str(tmp_path / "training.yaml")])
    assert card.data.base_model is None  # a registry alias is no Hub id to link
    assert "**xplus-tiny** is xplus-tiny made a better translator" in card.text
    assert card_results(card) == {
        ("facebook/flores", "x-en", "spbleu"): 30.0, ("facebook/flores", "x-en", "xcomet"): 80.0,
        ("facebook/xnli", None, "accuracy"): 44.8, ("LLaMAX/BenchMAX_Math", None, "accuracy"): 50.1,
    }
    assert "| MGSM | accuracy | 50.10 |" in card.text and "| x→en | 30.00 | 80.00 |" in card.text
    assert all(other_numbers(suite) == {} for suite in scores.values())


def test_task_shapes_and_unknown_numbers_are_all_read():
    suite = {"tasks": {"a": {"metric": "acc", "value": 0.5, "stderr": 0.1}, "b": {"metrics": {"f1": 0.25}},
                       "c": {"acc": 0.75, "n": 100, "ok": True}, "d": 0.125, "e": {"metric": "acc", "value": float("nan")}},
             "timing": {"total_s": 3.0, "label": "x"}, "signatures": {"acc": "lm-eval 0.4.13"}}
    assert task_scores(suite) == {"a": {"acc": 0.5}, "b": {"f1": 0.25}, "c": {"acc": 0.75}, "d": {"score": 0.125}}
    assert other_numbers(suite) == {"timing.total_s": 3.0}


@pytest.mark.parametrize("case,message", [
    ("no run.json", "is not an xplus-eval run folder"),
    ("no scores", "has no scores.json yet"),
    ("bad json", "run.json is not valid JSON"),
    ("suite not object", "suite(s) translation are not objects"),
])
def test_malformed_run_folders_are_refused(case, message, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    if case != "no run.json":
        (run / "run.json").write_text("{not json" if case == "bad json" else json.dumps({"model": "xplus-tiny"}))
    if case == "suite not object":
        (run / "scores.json").write_text(json.dumps({"translation": [1, 2]}))
    with pytest.raises(RunFolderError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_run(run)


def test_provenance_training_yaml_describes_the_recipe_it_holds(tmp_path):
    (tmp_path / "training.yaml").write_text(PROVENANCE_YAML)
    recipe = read_training_recipe(tmp_path / "training.yaml")
    assert (recipe.base_model, recipe.method, recipe.datasets) == ("Qwen/Qwen3-8B", "layer_selective", [])
    assert [stage_layers(s) for s in recipe.stages] == ["bottom 4", "top 15, skip 20"]
    assert recipe.hyperparameters["optim.learning_rate"] == 1.0e-5 and recipe.hyperparameters["stage.steps"] == 1200
    run = write_run(tmp_path / "run", "xplus-tiny")
    card = write_card(tmp_path, ["--eval-run", str(run), "--training-yaml", str(tmp_path / "training.yaml")])
    assert card.data.base_model == "Qwen/Qwen3-8B"
    assert "| top-15 | top 15, skip 20 |" in card.text and "| `stage.final_train_loss` | `0.912` |" in card.text
    assert "two-stage layer-selective tuning" in card.text


@pytest.mark.parametrize("text,message", [
    ("- a\n- b\n", "not a YAML mapping"),
    ("stages: {a: 1}\n", "'stages' must be a list of mappings"),
    ("stages: [\n", "not valid YAML"),
])
def test_malformed_training_yaml_is_refused(text, message, tmp_path):
    path = tmp_path / "training.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_training_recipe(path)
