"""The off-target rate: planted wrong-language outputs and copies of the source, counted with the real
fastText LID model (lid.176) and carried into scores, the report, the heatmaps, the viewer's filter and
the model card."""

from __future__ import annotations

import json

import pytest
from conftest import LID176_PATH
from helpers.translation import make_run

from xplus_release.evalsuite.translation.off_target import OffTargetCounter, add_off_target

WRONG = (0, 3, 7)  # sentences answered in French instead of German
COPIES = (1, 5)  # sentences answered with the English source


def _lines(flores_dir, name: str) -> list[str]:
    return (flores_dir / "devtest" / f"{name}.devtest").read_text(encoding="utf-8").splitlines()[:12]


@pytest.fixture(scope="module")
def planted(flores_dir):
    """en-de records: German references as hypotheses, except WRONG (French) and COPIES (the source)."""
    english, german, french = (_lines(flores_dir, n) for n in ("eng_Latn", "deu_Latn", "fra_Latn"))
    records = []
    for i in range(12):
        hypothesis = french[i] if i in WRONG else english[i].upper() if i in COPIES else german[i]
        records.append({"index": i, "source": english[i], "reference": german[i], "hypothesis": hypothesis})
    records.append({"index": 12, "source": "x", "reference": "y", "hypothesis": "  "})  # empty: neither
    return {"en-de": records}


def test_wrong_language_and_source_copies_are_counted_apart(planted):
    counted = OffTargetCounter(str(LID176_PATH)).count(planted["en-de"], "de")
    assert counted["off_target_segments"] == list(WRONG) and counted["source_copy_segments"] == list(COPIES)
    assert (counted["off_target"], counted["source_copies"]) == (3, 2)
    assert counted["offtarget"] == pytest.approx(100 * 3 / 13, abs=1e-4)


def test_off_target_reaches_report_heatmap_viewer_filter_and_card(planted, tmp_path):
    from xplus_release.evalsuite.translation.aggregate import aggregate
    from xplus_release.evalsuite.translation.report import render_report
    from xplus_release.evalsuite.view.reading import open_runs
    from xplus_release.evalsuite.view.segments import PageQuery, direction_rows, select_rows
    from xplus_release.model_cards.tables import direction_grids
    from xplus_release.runs import RunFolder

    records = planted["en-de"]
    path = make_run(tmp_path / "run", "m", {"en-de": [r["hypothesis"] for r in records]},
                    {"en-de": [r["reference"] for r in records]})
    # make_run numbers sources "source i": store the real ones so copies are copies
    store = path / "generations" / "translation" / "en-de.jsonl"
    lines = [json.loads(line) for line in store.read_text(encoding="utf-8").splitlines()]
    store.write_text("".join(json.dumps({**line, "source": r["source"]}) + "\n" for line, r in zip(lines, records)),
                     encoding="utf-8")
    directions = {"en-de": {"segments": len(records), "chrf": 50.0, "empty": 1, "truncated": 0}}
    signature = add_off_target(planted, directions, str(LID176_PATH))
    assert signature.startswith(f"lid:{LID176_PATH}|copies:apart")
    scores = {"settings": {"langs": ["en", "de"], "metrics": ["chrf", "offtarget"], "dataset": "local",
                           "segments_per_direction": 13, "max_tokens": 16, "lid_model": str(LID176_PATH)},
              "signatures": {"offtarget": signature}, "directions": directions,
              "aggregates": aggregate(directions, ["en", "de"], ["chrf", "offtarget"])}
    run = RunFolder.open(path, "m")
    run.write_scores("translation", scores)
    report = render_report(run, scores)
    assert "3 outputs in another language than the target" in report
    assert "2 outputs that copy the source sentence" in report
    assert "| en-de | 50.00 | 23.08 | 1 | 0 | 3 | 2 |" in report  # chrF, off-target %, empty, truncated, counts
    assert (path / "translation_offtarget.png").is_file() and "![off-target %](translation_offtarget.png)" in report
    views = open_runs([path])
    rows = direction_rows(views, "en-de")
    assert [r["index"] for r in select_rows(rows, PageQuery("en-de", outputs="off-target"))] == list(WRONG)
    assert [r["index"] for r in select_rows(rows, PageQuery("en-de", outputs="source copies"))] == list(COPIES)
    grids = dict(direction_grids(scores))
    assert "23.08" in grids["off-target % (language ID; source copies apart)"]
    assert not any(name in grids for name in ("off_target", "source_copies"))  # counts are not scores


def test_missing_lid_model_fails_before_generating(tmp_path):
    from xplus_release.errors import MissingAssetError
    from xplus_release.evalsuite.translation.options import TranslationOptions
    from xplus_release.evalsuite.translation.suite import TranslationSuite

    options = TranslationOptions.build({"lid_model": str(tmp_path / "lid.bin"), "metrics": ["chrf", "offtarget"]})
    with pytest.raises(MissingAssetError, match="--lid-model"):
        TranslationSuite._preflight(["chrf", "offtarget"], options)
