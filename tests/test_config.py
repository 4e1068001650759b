"""The one config mechanism (``xplus_release.config``): typed options with one-line errors, YAML, --set,
and the command-line flags made from the same declaration."""

from __future__ import annotations

import argparse

import pytest

from xplus_release.config import add_flags, from_flags, parse_overrides
from xplus_release.errors import ConfigError
from xplus_release.evalsuite.cli import main
from xplus_release.evalsuite.reasoning.options import ReasoningOptions
from xplus_release.evalsuite.translation.options import TranslationOptions


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


def test_a_field_with_its_own_flag_name_keeps_its_yaml_key():
    """``keys add --rpm`` is ``KeyLimits.requests_per_minute``: the flag, its default and its check come from
    the field; the keys file keeps the field's name."""
    from xplus_release.serve.keys import KeyLimits

    parser = argparse.ArgumentParser()
    add_flags(parser, KeyLimits)
    limits = from_flags(KeyLimits, parser.parse_args(["--rpm", "7", "--chars-per-minute", "9"]))
    assert (limits.requests_per_minute, limits.characters_per_minute, limits.concurrency) == (7, 9, 4)
    assert limits.model_dump() == {"requests_per_minute": 7, "characters_per_minute": 9, "concurrency": 4,
                                   "characters_per_day": None, "characters_per_month": None}
    with pytest.raises(SystemExit):
        parser.parse_args(["--requests-per-minute", "7"])  # the field's name is not a flag
    with pytest.raises(ConfigError, match=r"^rpm must be at least 1, got 0$"):
        from_flags(KeyLimits, parser.parse_args(["--rpm", "0"]))


@pytest.mark.parametrize("argv, words", [
    (["keys", "add", "bob", "--concurrency", "0"], "error: concurrency must be at least 1, got 0"),
    (["--max-restarts", "-1"], "error: max-restarts must be at least 0, got -1"),
    (["--tensor-parallel-size", "0"], "error: tensor-parallel-size must be at least 1, got 0"),
])
def test_serve_flags_from_the_shared_options_are_checked_before_anything_starts(argv, words, tmp_path, capsys):
    from xplus_release.serve.cli import main as serve_main

    assert serve_main([*argv, "--no-demo"] if argv[0] != "keys" else [*argv, "--file", str(tmp_path / "k.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(words) and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # no keys file was written


def test_model_options_are_one_declaration_for_every_command(monkeypatch):
    """xplus-eval, xplus-translate and xplus-serve read --model and the engine flags from ``ModelOptions``:
    the same defaults, and the API key from the environment when the flag is left out."""
    from xplus_release.evalsuite.common import RunOptions
    from xplus_release.options import ModelOptions, ServerOptions
    from xplus_release.serve.cli import build_parser as serve_parser
    from xplus_release.translate_cli import build_parser as translate_parser

    monkeypatch.setenv("XPLUS_API_KEY", "from-env")
    assert ModelOptions().api_key == "from-env" and ModelOptions(api_key="given").api_key == "given"
    args = translate_parser().parse_args(["-s", "en", "-t", "de", "-tp", "2", "--concurrency", "8"])
    opts = from_flags(ModelOptions, args)
    assert (opts.model, opts.tensor_parallel_size, opts.concurrency, opts.api_key) == ("xplus-tiny", 2, 8, "from-env")
    served = serve_parser().parse_args(["--model", "m", "--max-restarts", "0", "--api-key", "what-clients-send"])
    model = from_flags(ModelOptions, served, exclude=("endpoint", "api_key", "concurrency"))
    assert (model.model, model.api_key, from_flags(ServerOptions, served).max_restarts) == ("m", "from-env", 0)
    assert not hasattr(served, "endpoint") and not hasattr(served, "concurrency")  # a server is no client
    assert set(ModelOptions.model_fields) | set(ServerOptions.model_fields) <= set(RunOptions.model_fields)
    assert RunOptions().concurrency == ModelOptions().concurrency == 256
