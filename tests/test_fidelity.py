"""Fidelity records: what each suite says about how its numbers were produced beside the paper's setting,
and the xCOMET model every report, card and --help names. No server needed."""

from __future__ import annotations

import pytest

from xplus_release.evalsuite.fidelity import render_fidelity
from xplus_release.evalsuite.translation.fidelity import translation_fidelity
from xplus_release.evalsuite.translation.options import DEFAULT_COMET_MODEL, TranslationOptions

SIGNATURES = {"xcomet": "model:Unbabel/XCOMET-XL|unbabel-comet:2.2.7|scale:0-100"}


def _settings(**changes) -> dict:
    settings = {"dataset": "benchmax", "langs": ["en", "zh", "hu", "es", "fr", "de", "ru", "ja", "th", "sw", "bn",
                                                 "te", "ar", "ko", "vi", "cs", "sr"],
                "metrics": ["spbleu", "xcomet"], "spbleu_tokenizer": "flores200",
                "comet_model": "Unbabel/XCOMET-XXL", "limit": None}
    return {**settings, **changes}


def test_the_papers_translation_setting_has_no_differences():
    record = translation_fidelity(_settings(), SIGNATURES, directions=272)
    assert record["differences"] == []
    assert record["xcomet_model"] == "Unbabel/XCOMET-XXL" and "unbabel-comet 2.2.7" in record["harness"]


@pytest.mark.parametrize("changes, directions, expected", [
    ({"comet_model": "Unbabel/XCOMET-XL"}, 272, "xCOMET model Unbabel/XCOMET-XL (BenchMAX: Unbabel/XCOMET-XXL)"),
    ({"spbleu_tokenizer": "flores101"}, 272, "spBLEU tokenizer flores101 (BenchMAX: flores200)"),
    ({"dataset": "local"}, 272, "FLORES text from local, not BenchMAX's copy"),
    ({"limit": 20}, 272, "--limit 20: first sentences only, not comparable with the paper"),
    ({}, 32, "17 languages, 32 directions (the paper: 17, all 272)"),
    ({"metrics": ["spbleu"], "comet_model": None}, 272, "spBLEU and xCOMET not both computed"),
])
def test_each_departure_from_the_paper_is_listed(changes, directions, expected):
    assert translation_fidelity(_settings(**changes), SIGNATURES, directions)["differences"] == [expected]


def test_xcomet_xxl_is_the_default_and_help_says_so(capsys):
    from xplus_release.evalsuite.cli import build_parser

    assert DEFAULT_COMET_MODEL == TranslationOptions().comet_model == "Unbabel/XCOMET-XXL"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["translation", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "default Unbabel/XCOMET-XXL" in help_text and "paper's FLORES-101" not in help_text


def test_fidelity_table_has_one_row_per_record():
    record = translation_fidelity(_settings(limit=3), SIGNATURES, directions=272)
    lines = render_fidelity({"translation": record})
    assert lines[0] == "### Fidelity" and lines[2].startswith("The paper: FLORES-101 devtest through BenchMAX")
    row = next(line for line in lines if line.startswith("| translation |"))
    assert "Unbabel/XCOMET-XXL" in row and "--limit 3" in row
    assert render_fidelity({}) == []


def test_multilingual_differences_name_smoke_settings_and_the_mgsm_variant():
    from xplus_release.evalsuite.multilingual.benchmax import COMMIT, BenchmaxCheckout
    from xplus_release.evalsuite.multilingual.fidelity import differences
    from xplus_release.evalsuite.multilingual.harness import HarnessConfig
    from xplus_release.evalsuite.multilingual.tasks import TASKS

    pinned = HarnessConfig(endpoint="", model="", tokenizer="", benchmax=BenchmaxCheckout("/b", COMMIT))
    assert differences(TASKS["xgpqa"], pinned) == []
    other = HarnessConfig(endpoint="", model="", tokenizer="", limit=2, max_gen_toks=8,
                          benchmax=BenchmaxCheckout("/b", "0" * 40))
    assert differences(TASKS["xgpqa"], other) == [
        "--limit 2: a subset of items, not comparable with the paper",
        "generation capped at 8 tokens (the task's own limit is overridden)",
        f"BenchMAX at {'0' * 40}, not the pinned commit"]
    assert "not BenchMAX's 17-language xMGSM" in differences(TASKS["mgsm-lmeval"], pinned)[0]


def test_model_card_names_the_xcomet_model():
    from xplus_release.model_cards.card import _xcomet_model_line

    assert _xcomet_model_line({"settings": {"comet_model": "Unbabel/XCOMET-XL"}}, False) == \
        "xCOMET model: `Unbabel/XCOMET-XL`."
    assert "Unbabel/XCOMET-XXL" in _xcomet_model_line({}, True)


def test_default_xcomet_xxl_missing_offline_is_one_line_with_the_fetch_command(tmp_path):
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "xplus_release.evalsuite.cli", "translation", "--model", "xplus-tiny",
           "--metrics", "xcomet", "--langs", "en,de", "--limit", "1", "--output", str(tmp_path / "run")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "empty-cache")}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, check=False)
    assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1
    assert "xCOMET model Unbabel/XCOMET-XXL is not available" in done.stderr
    assert "hf download Unbabel/XCOMET-XXL" in done.stderr
