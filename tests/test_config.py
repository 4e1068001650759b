"""The one config mechanism (``xplus_release.config``): typed options with one-line errors, YAML, --set,
and the command-line flags made from the same declaration."""

from __future__ import annotations

import argparse

import pytest
from xplus_release.evalsuite.cli import main
from xplus_release.evalsuite.reasoning.options import ReasoningOptions
from xplus_release.evalsuite.translation.options import TranslationOptions

from xplus_release.config import add_flags, from_flags, parse_overrides
from xplus_release.errors import ConfigError


def test_a_misspelt_option_names_the_one_meant():
    with pytest.raises(ConfigError) as info:
        TranslationOptions.build({"lang": "en,zh"})
    assert str(info.value).startswith("unknown translation option(s): lang; did you mean 'langs'?")
    with pytest.raises(ConfigError, match=r"^comet-batch-size must be at least 1, got 0$"):
        TranslationOptions.build({"comet_batch_size": 0})
    with pytest.raises(ConfigError, match=r"^--judge-endpoint needs --judge-model"):
        ReasoningOptions.build({"judge_endpoint": "http://judge/v1"})


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "opts.yaml"
    path.write_text("langs: en,zh,sw\nmax_tokens: 64\ntokenizer: flores101\n", encoding="utf-8")
    opts = TranslationOptions.from_yaml(path, ["max_tokens=32", "directions=en-x"])
    assert (opts.langs, opts.max_tokens, opts.tokenizer, opts.directions) == (
        ("en", "zh", "sw"), 32, "flores101", ("en-x",))
    assert opts.override(["langs=de,fr"]).langs == ("de", "fr") and opts.override([]).max_tokens == 32
    path.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        TranslationOptions.from_yaml(path)
    with pytest.raises(ConfigError, match="is not KEY=VALUE"):
        parse_overrides(["max_tokens"])


def test_broken_yaml_is_one_line_and_set_values_are_yaml(tmp_path):
    path = tmp_path / "opts.yaml"
    path.write_text("langs: [en,\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^translation file .*opts.yaml is not valid YAML: "):
        TranslationOptions.from_yaml(path)
    assert parse_overrides(["skip=[5]", "stages=[{name: a}]", "note=a: b: c", "tag="]) == {
        "skip": [5], "stages": [{"name": "a"}], "note": "a: b: c", "tag": None}


def test_flags_come_from_the_declaration_and_keep_its_defaults():
    parser = argparse.ArgumentParser()
    add_flags(parser, ReasoningOptions, prefix="reasoning-")
    args = parser.parse_args(["--reasoning-tasks", "math", "--no-reasoning-in-process", "--reasoning-max-tokens", "8"])
    opts = from_flags(ReasoningOptions, args, prefix="reasoning-")
    assert (opts.tasks, opts.in_process, opts.max_tokens) == ("math", False, 8)
    assert opts.thinking == ReasoningOptions().thinking == "on"  # a flag left out keeps the model's default
    with pytest.raises(SystemExit):
        parser.parse_args(["--reasoning-thinking", "maybe"])


@pytest.mark.parametrize("argv, words", [
    (["translation", "--set", "lang=en"], "error: unknown translation option(s): lang; did you mean 'langs'?"),
    (["all", "--set", "langs=en"], "error: --set langs: name the suite, as SUITE.OPTION"),
    (["all", "--suites", "translation", "--set", "translation.directions=en-en"],
     "error: direction en-en translates English into itself"),
])
def test_cli_overrides_are_checked_before_anything_runs(argv, words, tmp_path, capsys):
    assert main([*argv, "-o", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(words) and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_cli_reads_suite_options_from_yaml(tmp_path, capsys):
    path = tmp_path / "opts.yaml"
    path.write_text("translation:\n  langs: en,xx\n", encoding="utf-8")
    assert main(["all", "--suites", "translation", "--config", str(path), "-o", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.startswith("error: unknown language 'xx'")


def test_nested_options_for_configs_that_have_sections(tmp_path):
    """How a recipe with sections adopts the mechanism: nested models, dotted --set, errors by path."""
    from xplus_release.config import AtLeastOne, Config

    class Stage(Config):
        epochs: AtLeastOne = 1
        layers: tuple[str, ...] = ()

    class Recipe(Config):
        section = "recipe"
        name: str = "demo"
        stage1: Stage = Stage()

    path = tmp_path / "recipe.yaml"
    path.write_text("stage1:\n  epochs: 2\n", encoding="utf-8")
    recipe = Recipe.from_yaml(path, ["stage1.layers=0,1"])
    assert (recipe.stage1.epochs, recipe.stage1.layers) == (2, ("0", "1"))
    with pytest.raises(ConfigError, match=r"^unknown recipe option\(s\): stage1.epoch; did you mean 'epochs'\?"):
        recipe.override(["stage1.epoch=3"])
    with pytest.raises(ConfigError, match=r"^stage1.epochs must be at least 1, got 0$"):
        recipe.override(["stage1.epochs=0"])
