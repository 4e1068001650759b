"""xplus-data: each step on real FLORES sentences with planted faults, the whole YAML pipeline (twice:
the second run does nothing), the datatrove engine (same output as the local one), bad input."""

from __future__ import annotations

import gzip
import itertools
import json
import random
import shutil
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from helpers.simhash_reference import reference_simhash

from xplus_release.languages import PAPER_LANGUAGES, get_language
from xplus_release.prompts import TRAINING_TEMPLATES
from xplus_release.training.pipeline import simhash
from xplus_release.training.pipeline.cli import main as xplus_data
from xplus_release.training.pipeline.config import PipelineConfig, load_pipeline
from xplus_release.training.pipeline.runner import PipelineRun
from xplus_release.training.pipeline.tokens import simhash_features, tokenize

EXAMPLES = Path(__file__).parents[1] / "training" / "pipeline" / "examples"
LID176 = Path(__file__).parent / "data" / "lid" / "lid.176.ftz"


def flores(flores_dir: Path, code: str) -> list[str]:
    path = flores_dir / "devtest" / f"{get_language(code).flores200}.devtest"
    return path.read_text(encoding="utf-8").splitlines()


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def pair_rows(src: list[str], tgt: list[str], s: str, t: str) -> list[dict]:
    return [{"src": s, "trg": t, "src_line": a, "tgt_line": b} for a, b in zip(src, tgt)]


def run_step(
    tmp_path: Path, step: str, rows: list[dict], params: dict | None = None, name: str = "in"
) -> tuple[list[dict], list[dict], dict]:
    """One step through the real pipeline machinery; returns (kept, drops, report of the step)."""
    write_jsonl(tmp_path / f"{name}.jsonl", rows)
    steps = (
        {"unify": {"error_budget": 1.0}, step: params or {}} if step != "unify" else {"unify": params or {}}
    )
    spec = {"format": "jsonl", "path": str(tmp_path / f"{name}.jsonl"), "name": name}
    config = PipelineConfig.build({"output": str(tmp_path / f"{name}-run"), "inputs": [spec], "steps": steps})
    report = PipelineRun(config, progress=False).run()
    folder = next(p for p in Path(config.output).iterdir() if p.name.endswith(step))
    kept = [r for f in sorted(folder.glob("*.jsonl")) for r in read_jsonl(f)]
    drops = [r for f in sorted((folder / "drops").glob("*.jsonl")) for r in read_jsonl(f)]
    return kept, drops, report["steps"][step]


# ------------------------------------------------------------------------------------------ unify


def test_unify_reads_every_format_and_sets_malformed_lines_aside(tmp_path, flores_dir):
    en, de, zh = flores(flores_dir, "en"), flores(flores_dir, "de"), flores(flores_dir, "zh")
    nllb = tmp_path / "eng_Latn-deu_Latn.gz"
    with gzip.open(nllb, "wt", encoding="utf-8") as f:
        f.write(f"{en[0]}\t{de[0]}\t1.1\t0.9\t0.8\n")
        f.write(f"{en[1]}\t{de[1]}\t1.2\t0.95\t0.85\tCCMatrix\thttp://a\tCCMatrix\thttp://b\n")
        f.write(f"{en[2]}\t{de[2]}\tnot-a-number\t0.9\t0.9\n")
        f.write(f"{en[3]}\t{de[3]}\n")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table(
            {
                "translation": [
                    {"en": en[4], "zh": zh[4]},
                    {"en": en[5], "zh": zh[5]},
                    {"en": en[6], "de": de[6]},
                ]
            }
        ),
        tmp_path / "opus.parquet",
    )
    (tmp_path / "m.en").write_text(f"{en[7]}\n{en[8]}\n{en[9]}\n", encoding="utf-8")
    (tmp_path / "m.de").write_text(f"{de[7]}\n{de[8]}\n", encoding="utf-8")
    (tmp_path / "p.tsv").write_bytes(f"{en[10]}\t{de[10]}\n".encode() + b"\xff\xfe\tbroken\nno tab here\n")
    (tmp_path / "j.jsonl").write_text(
        json.dumps({"src": "eng_Latn", "trg": "German", "src_line": en[11], "tgt_line": de[11]})
        + '\n{"src": "en"\n{"src": "en", "trg": "de", "src_line": "x"}\n'
        + json.dumps({"src": "xx", "trg": "de", "src_line": "a", "tgt_line": "b"})
        + "\n",
        encoding="utf-8",
    )
    yaml_text = f"""
output: {tmp_path / "out"}
inputs:
  - {{format: nllb, path: {nllb}}}
  - {{format: opus100, path: {tmp_path / "opus.parquet"}, src: en, trg: zh}}
  - {{format: moses, src_path: {tmp_path / "m.en"}, trg_path: {tmp_path / "m.de"}, src: en, trg: de}}
  - {{format: tsv, path: {tmp_path / "p.tsv"}, src: en, trg: de}}
  - {{format: jsonl, path: {tmp_path / "j.jsonl"}}}
steps: [{{unify: {{error_budget: 1.0}}}}]
"""
    (tmp_path / "p.yaml").write_text(yaml_text, encoding="utf-8")
    assert xplus_data(["run", str(tmp_path / "p.yaml"), "--no-progress"]) == 0
    unify = tmp_path / "out" / "unify"
    records = {
        r["provenance"]["source"] + f":{r['provenance']['line']}": r
        for f in sorted(unify.glob("*.jsonl"))
        for r in read_jsonl(f)
    }
    assert sorted(records) == [
        "eng_Latn-deu_Latn:1",
        "eng_Latn-deu_Latn:2",
        "j:1",
        "m:1",
        "m:2",
        "opus:1",
        "opus:2",
        "p:1",
    ]
    first = records["eng_Latn-deu_Latn:2"]
    assert (first["src"], first["trg"], first["src_line"], first["tgt_line"]) == ("en", "de", en[1], de[1])
    assert first["provenance"]["laser_score"] == 1.2 and first["provenance"]["target_url"] == "http://b"
    assert records["opus:1"]["trg"] == "zh" and records["opus:1"]["tgt_line"] == zh[4]
    assert (records["j:1"]["src"], records["j:1"]["trg"]) == (
        "en",
        "de",
    )  # codes normalised from eng_Latn, German
    malformed = Counter(
        (m["reason"], Path(m["where"].rsplit(":", 1)[0]).name)
        for f in (unify / "malformed").glob("*.jsonl")
        for m in read_jsonl(f)
    )
    assert malformed == {
        ("bad_number", nllb.name): 1,
        ("wrong_column_count", nllb.name): 1,
        ("missing_language", "opus.parquet"): 1,
        ("line_count_mismatch", "m.en"): 1,
        ("invalid_utf8", "p.tsv"): 1,
        ("wrong_column_count", "p.tsv"): 1,
        ("bad_json", "j.jsonl"): 1,
        ("missing_field", "j.jsonl"): 1,
        ("unknown_language", "j.jsonl"): 1,
    }
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["steps"]["unify"]["kept"] == 8 and sum(report["steps"]["unify"]["malformed"].values()) == 9


def test_unify_over_error_budget_is_one_line_error_and_keeps_nothing_half_written(
    tmp_path, flores_dir, capsys
):
    en, de = flores(flores_dir, "en"), flores(flores_dir, "de")
    lines = [f"{a}\t{b}" for a, b in zip(en[:8], de[:8])] + ["no tab", "still no tab"]
    (tmp_path / "x.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "p.yaml").write_text(
        f"output: {tmp_path / 'out'}\ninputs: [{{format: tsv, path: x.tsv, src: en, trg: de}}]\n"
        "steps: [{unify: {error_budget: 0.1}}]\n",
        encoding="utf-8",
    )
    assert xplus_data(["run", str(tmp_path / "p.yaml"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1
        and "2 of 10 lines are malformed (wrong_column_count=2)" in err[0]
        and "error_budget" in err[0]
    )
    assert not list((tmp_path / "out" / "unify").glob(".*.tmp"))
    assert not list(
        (tmp_path / "out" / "logs" / "unify").glob("completions/*")
    )  # the input is not marked done


# ------------------------------------------------------------------------------------------ clean


def test_clean_removes_invalid_characters_normalises_and_drops_empty_pairs(tmp_path, flores_dir):
    en, fr, bn, zh = (flores(flores_dir, c) for c in ("en", "fr", "bn", "zh"))
    zwnj_bn = (
        next(line for line in bn if "\u200c" in line)
        if any("\u200c" in line for line in bn)
        else bn[0] + "\u200c"
    )
    rows = [
        {"src": "en", "trg": "fr", "src_line": en[0] + "\u0007\u200b", "tgt_line": "\ufeff" + fr[0]},
        {
            "src": "en",
            "trg": "fr",
            "src_line": en[1].replace(",", " ,", 1) + "\ud800",
            "tgt_line": fr[1] + "\ufffd",
        },
        {"src": "en", "trg": "fr", "src_line": "Cafe\u0301  au   lait ?", "tgt_line": "Quoi ?"},
        {"src": "en", "trg": "bn", "src_line": en[3], "tgt_line": zwnj_bn},
        {"src": "en", "trg": "zh", "src_line": en[4], "tgt_line": zh[4] + "\u200d"},
        {"src": "en", "trg": "fr", "src_line": en[5], "tgt_line": "\u200b\u0003 "},
        {"src": "en", "trg": "fr", "src_line": "\x00", "tgt_line": fr[6]},
    ]
    kept, drops, stats = run_step(tmp_path, "clean", rows)
    assert [k["src_line"] for k in kept[:2]] == [en[0], en[1]]
    assert [k["tgt_line"] for k in kept[:2]] == [fr[0], fr[1]]
    assert (kept[2]["src_line"], kept[2]["tgt_line"]) == (
        "Caf\u00e9 au lait?",
        "Quoi ?",
    )  # NFC; French keeps " ?"
    # ZWNJ matters in Bengali and stays; NFC decomposes U+09DC (a composition exclusion) as the standard says
    assert kept[3]["tgt_line"] == unicodedata.normalize("NFC", zwnj_bn) and "\u200c" in kept[3]["tgt_line"]
    assert kept[4]["tgt_line"] == zh[4]  # ZWJ removed outside joining scripts
    assert sorted((d["reason"], d["record"]["tgt_line"][:5]) for d in drops) == [
        ("empty_source", fr[6][:5]),
        ("empty_target", ""),
    ]
    assert (
        stats["in"] == 7 and stats["kept"] == 5 and stats["dropped"] == {"empty_target": 1, "empty_source": 1}
    )
    assert stats["counters"]["invalid_characters_removed"] == 9  # 3 + 2 + 1 (ZWJ) + 2 + 1


# ------------------------------------------------------------------------------------------ dedup


def test_tokenisation_rule_per_language():
    assert tokenize("Hello, World! It's 5.", "en") == ["hello", "world", "its", "5"]
    assert tokenize("你好，世界。", "zh") == ["你", "好", "世", "界"]
    assert tokenize("สวัสดี ครับ", "th") == list("สวัสดีครับ")
    assert tokenize("안녕하세요, 세계", "ko") == ["안녕하세요", "세계"]
    assert tokenize("বাংলা ভাষা।", "bn") == ["বাংলা", "ভাষা"]  # vowel signs stay inside the word
    assert simhash_features(["你", "好", "世"], "zh") == ["你好", "好世"]


def test_vectorised_tokens_and_fingerprints_match_the_rule_in_every_language(flores_dir):
    en = flores(flores_dir, "en")
    for lang in (
        get_language("en"),
        *(get_language(c) for c in ("zh", "ja", "th", "bn", "ar", "ko", "sr", "fr")),
    ):
        tgt = flores(flores_dir, lang.code)
        src_texts, tgt_texts = en[:15] + ["Hi", "¿Qué?"], tgt[:15] + ["你", "a\x00b"]
        src_langs, tgt_langs = ["en"] * 17, [lang.code] * 15 + ["zh", lang.code]
        batch = simhash.BatchFeatures(src_texts, tgt_texts, src_langs, tgt_langs)
        fps = batch.fingerprints()
        for i in range(17):
            src_tokens, tgt_tokens = (
                tokenize(src_texts[i], src_langs[i]),
                tokenize(tgt_texts[i].replace("\x00", " "), tgt_langs[i]),
            )
            assert batch.token_counts[i].tolist() == [len(src_tokens), len(tgt_tokens)]
            features = simhash_features(src_tokens, src_langs[i]) + simhash_features(tgt_tokens, tgt_langs[i])
            assert int(fps[i]) == reference_simhash(features), (lang.code, i)


def test_kernel_fingerprints_equal_the_reference_on_every_flores_line_and_long_texts(flores_dir):
    """Every FLORES line of every language, paired with English both ways, through the compiled kernel,
    plus texts past 255 features (the kernel's byte lanes are flushed mid-pair) and empty sides."""
    en = flores(flores_dir, "en")
    src_texts, tgt_texts, src_langs, tgt_langs = [], [], [], []
    for lang in PAPER_LANGUAGES:
        if lang.code == "en":
            continue
        lines = flores(flores_dir, lang.code)
        src_texts += en + lines
        tgt_texts += lines + en
        src_langs += ["en"] * len(en) + [lang.code] * len(lines)
        tgt_langs += [lang.code] * len(lines) + ["en"] * len(en)
    long_zh = "".join(flores(flores_dir, "zh")[:8])  # > 255 bigrams on one side
    echo = " ".join(["echo"] * 300 + en[0].split())  # 300 equal hashes: a byte lane must not overflow
    src_texts += [" ".join(en[:12]), long_zh, echo, "...", "", " !? "]
    tgt_texts += [" ".join(en[12:20]), " ".join(en[:3]), "Echo", "ok ok", "", "Wort"]
    src_langs += ["en", "zh", "en", "en", "ja", "th"]
    tgt_langs += ["de", "en", "de", "de", "de", "de"]
    batch = simhash.BatchFeatures(src_texts, tgt_texts, src_langs, tgt_langs)
    fps = batch.fingerprints()
    assert len(simhash_features(tokenize(long_zh, "zh"), "zh")) > 255
    for i in range(len(src_texts)):
        src_tokens, tgt_tokens = tokenize(src_texts[i], src_langs[i]), tokenize(tgt_texts[i], tgt_langs[i])
        assert batch.token_counts[i].tolist() == [len(src_tokens), len(tgt_tokens)], i
        features = simhash_features(src_tokens, src_langs[i]) + simhash_features(tgt_tokens, tgt_langs[i])
        assert int(fps[i]) == reference_simhash(features), (src_langs[i], tgt_langs[i], i)
    assert int(fps[-2]) == 0  # no features at all
    # source and target swapped: the same multiset of features, so the same fingerprint
    assert fps[0] == fps[len(en)] and len({int(f) for f in fps}) > 0.95 * len(fps) / 2


def test_simhash_table_search_is_exact(flores_dir):
    en, de = flores(flores_dir, "en"), flores(flores_dir, "de")
    rng = random.Random(7)
    src, tgt = list(en), list(de)
    for i in range(120):  # one-word edits of random lines: distances spread over 0..10 bits
        line = rng.randrange(60)
        words = en[line].split()
        words[rng.randrange(len(words))] = f"edit{i}"
        src.append(" ".join(words))
        tgt.append(de[line])
    fps = simhash.BatchFeatures(src, tgt, ["en"] * len(src), ["de"] * len(src)).fingerprints()
    for hamming in (0, 2, 3, 5):
        brute = [
            sum((int(fps[i]) ^ int(fps[j])).bit_count() <= hamming for j in range(i))
            for i in range(len(fps))
        ]
        assert simhash.earlier_conflicts(fps, hamming).tolist() == brute
    assert max(simhash.earlier_conflicts(fps, 3)) > 0


def test_dedup_drops_length_faults_and_more_than_two_conflicts(tmp_path, flores_dir):
    en, de = flores(flores_dir, "en"), flores(flores_dir, "de")
    rows = pair_rows(en[:30], de[:30], "en", "de")
    rows += [
        {"src": "en", "trg": "de", "src_line": en[0], "tgt_line": de[0]},  # 1 earlier conflict: kept
        {
            "src": "en",
            "trg": "de",
            "src_line": en[0].replace(".", "!"),
            "tgt_line": de[0],
        },  # punctuation: 2, kept
        {
            "src": "en",
            "trg": "de",
            "src_line": en[0].upper(),
            "tgt_line": de[0],
        },  # case only: 3 conflicts, dropped
        {"src": "en", "trg": "de", "src_line": en[1], "tgt_line": de[1]},
        {"src": "en", "trg": "de", "src_line": en[1], "tgt_line": de[1] + " ..."},
        {
            "src": "en",
            "trg": "de",
            "src_line": en[1],
            "tgt_line": de[1].replace(",", ""),
        },  # 3rd copy of line 2
        {
            "src": "en",
            "trg": "zh",
            "src_line": en[0],
            "tgt_line": "一个句子，不是同一对语言。",
        },  # other pair: no conflict
        {
            "src": "en",
            "trg": "de",
            "src_line": en[2],
            "tgt_line": " ".join(de[2].split()[:2]),
        },  # truncated target
        {"src": "en", "trg": "de", "src_line": "Ja", "tgt_line": "Ja"},  # one token each side
    ]
    kept, drops, stats = run_step(tmp_path, "dedup", rows, {"exact_duplicates": "paper"})
    got = sorted((d["record"]["id"].split(":")[1], d["reason"]) for d in drops)
    assert got == sorted(
        [
            ("32", "simhash_conflicts"),
            ("35", "simhash_conflicts"),
            ("37", "length_ratio"),
            ("38", "too_few_tokens"),
        ]
    )
    assert {d["conflicts"] for d in drops if d["reason"] == "simhash_conflicts"} == {3}
    assert len(kept) == 35 and stats["dropped"] == {
        "simhash_conflicts": 2,
        "length_ratio": 1,
        "too_few_tokens": 1,
    }


def test_dedup_keeps_the_first_exact_copy_then_applies_the_conflict_rule(tmp_path, flores_dir):
    en, de = flores(flores_dir, "en"), flores(flores_dir, "de")
    rows = pair_rows(en[:30], de[:30], "en", "de")
    rows += pair_rows(
        [en[0], en[0].upper(), en[0].replace(".", " !")], [de[0], de[0], de[0] + " "], "en", "de"
    )
    rows += pair_rows([en[1]], [de[0]], "en", "de")  # the same source, another target: not a copy
    rows += pair_rows([de[2]], [en[2]], "en", "de")  # sides swapped: the same fingerprint, not a copy
    kept, drops, stats = run_step(tmp_path, "dedup", rows, {"max_conflicts": 0})
    assert [(d["record"]["id"].split(":")[1], d["reason"]) for d in drops] == [
        ("30", "exact_duplicate"),
        ("31", "exact_duplicate"),
        ("32", "exact_duplicate"),
        ("34", "simhash_conflicts"),  # conflicts with row 2 (same features), counted among kept pairs
    ]
    assert [k["id"].split(":")[1] for k in kept] == [str(i) for i in range(30)] + ["33"]
    assert stats["dropped"] == {"exact_duplicate": 3, "simhash_conflicts": 1}
    _, paper_drops, _ = run_step(tmp_path, "dedup", rows, {"exact_duplicates": "paper"}, name="paper")
    assert [d["record"]["id"].split(":")[1] for d in paper_drops] == ["32"]  # 3 earlier conflicts


def test_dedup_finds_a_duplicate_in_another_shard(tmp_path, flores_dir):
    en, de = flores(flores_dir, "en"), flores(flores_dir, "de")
    rows = pair_rows(en[:20], de[:20], "en", "de") + pair_rows([en[3]] * 3, [de[3]] * 3, "en", "de")
    write_jsonl(tmp_path / "a.jsonl", rows)
    (tmp_path / "p.yaml").write_text(
        f"output: {tmp_path / 'out'}\ninputs: [{{format: jsonl, path: a.jsonl}}]\n"
        "steps: [{unify: {shard_size: 7}}, {dedup: {max_conflicts: 0, exact_duplicates: paper}}]\n",
        encoding="utf-8",
    )
    assert xplus_data(["run", str(tmp_path / "p.yaml"), "--no-progress"]) == 0
    drops = [
        d for f in sorted((tmp_path / "out" / "dedup" / "drops").glob("*.jsonl")) for d in read_jsonl(f)
    ]
    assert [(d["record"]["id"], d["conflicts"]) for d in drops] == [
        ("a-00002:6", 1),
        ("a-00003:0", 2),
        ("a-00003:1", 3),
    ]


# ------------------------------------------------------------------------------------------ langid


def test_langid_with_lid176_drops_swapped_and_mislabelled_pairs(tmp_path, flores_dir):
    en, de, ru, fr = (flores(flores_dir, c) for c in ("en", "de", "ru", "fr"))
    rows = (
        pair_rows(en[:10], de[:10], "en", "de")
        + pair_rows(en[:5], ru[:5], "en", "ru")
        + [
            {"src": "en", "trg": "de", "src_line": de[20], "tgt_line": en[20]},  # swapped
            {"src": "en", "trg": "de", "src_line": en[21], "tgt_line": fr[21]},  # target is French
            {"src": "en", "trg": "ru", "src_line": fr[22], "tgt_line": ru[22]},  # source is French
            {"src": "en", "trg": "ru", "src_line": de[23], "tgt_line": fr[23]},  # neither side
        ]
    )
    kept, drops, _stats = run_step(tmp_path, "langid", rows, {"model": str(LID176)})
    assert [(d["record"]["id"].split(":")[1], d["reason"]) for d in drops] == [
        ("15", "lid_swapped"),
        ("16", "lid_target_mismatch"),
        ("17", "lid_source_mismatch"),
        ("18", "lid_both_mismatch"),
    ]
    assert drops[1]["target_label"] == "__label__fr" and drops[1]["target_prob"] > 0.5
    assert len(kept) == 15
    _, strict_drops, _ = run_step(
        tmp_path, "langid", rows[:15], {"model": str(LID176), "threshold": 0.9999}, name="strict"
    )
    assert strict_drops and {d["reason"] for d in strict_drops} <= {
        "lid_source_mismatch",
        "lid_target_mismatch",
        "lid_both_mismatch",
    }
    assert all(min(d["source_prob"], d["target_prob"]) < 0.9999 for d in strict_drops)


# ------------------------------------------------------------------------------------------ instruct


def test_instruct_is_chat_jsonl_in_both_directions_and_deterministic(tmp_path, flores_dir):
    en, zh = flores(flores_dir, "en"), flores(flores_dir, "zh")
    rows = pair_rows(en[:12], zh[:12], "en", "zh")
    first, _, stats = run_step(tmp_path, "instruct", rows, {"directions": "both", "seed": 3}, name="a")
    again, _, _ = run_step(tmp_path, "instruct", rows, {"directions": "both", "seed": 3}, name="b")
    other, _, _ = run_step(tmp_path, "instruct", rows, {"directions": "both", "seed": 4}, name="c")
    assert stats["in"] == 12 and stats["kept"] == 24
    assert [r["messages"] for r in first] == [r["messages"] for r in again]
    assert [r["messages"] for r in first] != [r["messages"] for r in other]
    forward, reverse = first[0], first[1]
    assert [m["role"] for m in forward["messages"]] == ["user", "assistant"]
    assert forward["messages"][1]["content"] == zh[0] and en[0] in forward["messages"][0]["content"]
    assert (
        reverse["messages"][1]["content"] == en[0]
        and "Simplified Chinese" in reverse["messages"][0]["content"]
    )
    used = Counter()
    for r in first:
        src_code, tgt_code = r["direction"].split("-")
        src_text = r["messages"][0]["content"]
        names = {"src_lang": get_language(src_code).name, "tgt_lang": get_language(tgt_code).name}
        source = en if src_code == "en" else zh
        matches = [
            i
            for i, t in enumerate(TRAINING_TEMPLATES)
            if any(t.format(src=line, **names) == src_text for line in source[:12])
        ]
        assert len(matches) == 1, src_text
        used[matches[0]] += 1
    assert len(used) >= 5  # diverse templates, not one phrasing


# ------------------------------------------------------------------------------------------ quality


@pytest.fixture(scope="module")
def tiny_seq2seq(tmp_path_factory, flores_dir):
    """A random-weight M2M100 (the NLLB architecture) with a BPE tokenizer trained on FLORES lines."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import M2M100Config, M2M100ForConditionalGeneration, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-nllb")
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    specials = ["<pad>", "<s>", "</s>", "<unk>"]
    bpe.train_from_iterator(
        flores(flores_dir, "en") + flores(flores_dir, "de"),
        trainers.BpeTrainer(
            vocab_size=600, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    bpe.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 2)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    tokenizer.save_pretrained(folder)
    config = M2M100Config(
        vocab_size=len(tokenizer),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=256,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    torch.manual_seed(0)
    M2M100ForConditionalGeneration(config).save_pretrained(folder)
    return folder


def quality_params(model: Path, flores_dir: Path, cache: Path, **extra) -> dict:
    # float32 on every device: bfloat16 on a GPU would make losses depend on the padding of a batch
    return {
        "model": str(model),
        "dev": str(flores_dir),
        "dev_split": "devtest",
        "cache": str(cache),
        "dtype": "float32",
        **extra,
    }


def test_quality_batches_by_length_and_losses_do_not_depend_on_batching(tiny_seq2seq, flores_dir):
    from xplus_release.training.pipeline.quality import LossScorer, QualityConfig

    en, de = flores(flores_dir, "en")[:20], flores(flores_dir, "de")[:20]
    small = LossScorer(
        tiny_seq2seq,
        QualityConfig.build(quality_params(tiny_seq2seq, flores_dir, Path("."), batch_tokens=300)),
    )
    large = LossScorer(
        tiny_seq2seq,
        QualityConfig.build(quality_params(tiny_seq2seq, flores_dir, Path("."), batch_tokens=10**6)),
    )
    lengths = [(len(a) + len(b)) // 2 + 2 for a, b in zip(en, de)]
    batches = small.batches(lengths)
    assert sorted(i for b in batches for i in b) == list(range(20)) and len(batches) > 3
    assert all(len(b) == 1 or max(lengths[i] for i in b) * len(b) <= 300 for b in batches)
    assert all(max(lengths[i] for i in a) <= min(lengths[i] for i in b) for a, b in itertools.pairwise(batches))
    assert len(large.batches(lengths)) == 1
    np.testing.assert_allclose(small.losses(en, de, "en", "de"), large.losses(en, de, "en", "de"), rtol=1e-4)


def test_quality_drops_pairs_above_the_dev_percentile_and_caches_dev_losses(
    tmp_path, tiny_seq2seq, flores_dir
):
    from xplus_release.training.pipeline.quality import LossScorer, QualityConfig

    en, de = flores(flores_dir, "en"), flores(flores_dir, "de")
    cache = tmp_path / "cache"
    params = quality_params(tiny_seq2seq, flores_dir, cache, batch_tokens=2000, chunk=16)
    kept, drops, _stats = run_step(
        tmp_path, "quality", pair_rows(en, de, "en", "de"), params
    )  # the dev set itself
    losses = LossScorer(tiny_seq2seq, QualityConfig.build(params)).losses(en, de, "en", "de")
    threshold = float(np.percentile(losses, 90))
    highest = sorted(range(60), key=lambda i: -losses[i])[:6]
    assert sorted(int(d["record"]["id"].split(":")[1]) for d in drops) == sorted(highest)
    assert {d["reason"] for d in drops} == {"quality_loss_above_dev_percentile"} and len(kept) == 54
    assert all(d["loss"] > d["threshold"] == round(threshold, 4) for d in drops)
    cached = list(cache.glob("en-de-*.json"))
    assert len(cached) == 1 and np.allclose(json.loads(cached[0].read_text())["losses"], losses, rtol=1e-4)
    thresholds = json.loads(next(tmp_path.glob("in-run/quality/thresholds.json")).read_text())
    assert thresholds["en-de"]["from_cache"] is False and thresholds["en-de"]["dev_pairs"] == 60
    # A second run (new output folder) takes the dev losses from the cache instead of scoring them again.
    _, drops_again, _ = run_step(tmp_path, "quality", pair_rows(en, de, "en", "de"), params, name="again")
    assert (
        json.loads(next(tmp_path.glob("again-run/quality/thresholds.json")).read_text())["en-de"][
            "from_cache"
        ]
        is True
    )
    assert [d["record"]["src_line"] for d in drops_again] == [d["record"]["src_line"] for d in drops]


def test_quality_model_missing_offline_is_one_line_error_before_any_work(tmp_path, flores_dir, capsys):
    (tmp_path / "x.tsv").write_text("a b\tc d\n", encoding="utf-8")
    (tmp_path / "p.yaml").write_text(
        f"output: {tmp_path / 'out'}\ninputs: [{{format: tsv, path: x.tsv, src: en, trg: de}}]\n"
        "steps: [unify, {quality: {model: facebook/nllb-200-distilled-600M, "
        f"dev: {flores_dir}, dev_split: devtest}}}}]\n",
        encoding="utf-8",
    )
    assert xplus_data(["run", str(tmp_path / "p.yaml"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "facebook/nllb-200-distilled-600M is not in the Hugging Face cache" in err[0]
    assert "hf download facebook/nllb-200-distilled-600M" in err[0]
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------- the whole pipeline


def all_drops(output: Path) -> dict[tuple[str, int], tuple[str, str]]:
    """(input, raw line) -> (step, reason) for every pair any step dropped."""
    found = {}
    for path in sorted(output.glob("*/drops/*.jsonl")):
        step = path.parts[-3]
        for d in read_jsonl(path):
            provenance = d["record"]["provenance"]
            found[(provenance["source"], provenance["line"])] = (step, d["reason"])
    return found


def snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The shipped FLORES demo, run once with the local engine (2 workers)."""
    output = tmp_path_factory.mktemp("demo") / "local"
    assert (
        xplus_data(["run", str(EXAMPLES / "flores-demo.yaml"), "--output", str(output), "--no-progress"]) == 0
    )
    return output


def test_demo_pipeline_drops_exactly_the_planted_faults(demo_run):
    manifest = json.loads((EXAMPLES / "raw" / "faults.json").read_text(encoding="utf-8"))
    names = {"en-zh": "en-zh", "en-de": "en-de", "en-ja": "eng_Latn-jpn_Jpan", "en-ru": "en-ru"}
    expected = {
        (names[pair], f["line"]): (f["step"], f["reason"])
        for pair, info in manifest.items()
        for f in info["faults"]
        if f["reason"]
    }
    assert all_drops(demo_run) == expected
    report = json.loads((demo_run / "report.json").read_text())
    assert report["steps"]["unify"]["malformed"] == {
        "wrong_column_count": 2,
        "invalid_utf8": 1,
        "bad_json": 1,
    }
    total = sum(info["pairs"] for info in manifest.values())
    kept = total - len(expected)
    assert report["steps"]["unify"]["kept"] == total and report["steps"]["langid"]["kept"] == kept
    rows = read_jsonl(demo_run / "train.jsonl")
    assert len(rows) == 2 * kept and all(
        [m["role"] for m in r["messages"]] == ["user", "assistant"] for r in rows
    )
    cleaned = [
        r for r in rows if r["id"].startswith("en-de-00001:") and "\u200b" in r["messages"][0]["content"]
    ]
    assert not cleaned  # the planted zero-width characters were removed, the pair kept


def test_second_run_does_nothing(demo_run, capsys):
    before = snapshot(demo_run)
    assert (
        xplus_data(["run", str(EXAMPLES / "flores-demo.yaml"), "--output", str(demo_run), "--no-progress"])
        == 0
    )
    report = json.loads((demo_run / "report.json").read_text())
    assert set(report["processed_this_run"].values()) == {0}
    after = snapshot(demo_run)
    assert {k: v for k, v in after.items() if k != "report.json"} == {
        k: v for k, v in before.items() if k != "report.json"
    }
    assert "instruct" in capsys.readouterr().out  # the summary table is printed every time


def test_output_with_step_folders_named_by_position_resumes_and_redoes_nothing(demo_run, tmp_path, capsys):
    """Runs made before step folders had stable names wrote ``01-unify/`` ... ``06-instruct/``: such a
    folder resumes (the numbered folders are renamed) and nothing is run again."""
    output = tmp_path / "old-names"
    shutil.copytree(demo_run, output)
    old_names = {step: f"{number:02d}-{step}" for number, step in
                 enumerate(("unify", "clean", "dedup", "langid", "quality", "instruct"), 1)}
    present = [step for step in old_names if (output / step).is_dir()]
    for step in present:
        (output / step).rename(output / old_names[step])
    before = snapshot(output)
    for step in present:  # where each file is expected after the rename
        before = {name.replace(f"{old_names[step]}/", f"{step}/", 1) if name.startswith(f"{old_names[step]}/")
                  else name: mtime for name, mtime in before.items()}
    argv = ["run", str(EXAMPLES / "flores-demo.yaml"), "--output", str(output), "--no-progress"]
    assert xplus_data(argv) == 0
    assert set(json.loads((output / "report.json").read_text())["processed_this_run"].values()) == {0}
    assert sorted(p.name for p in output.iterdir() if p.is_dir()) == sorted([*present, "logs"])
    after = snapshot(output)
    assert {k: v for k, v in after.items() if k != "report.json"} == {
        k: v for k, v in before.items() if k != "report.json"}  # moved, not rewritten
    assert "renamed 03-dedup/ to dedup/" in capsys.readouterr().err
    (output / "dedup").rename(output / "03-dedup")
    shutil.copytree(output / "03-dedup", output / "dedup")
    assert xplus_data(argv) == 2  # two copies of one step: which one is meant is the user's call
    assert "holds both 03-dedup/ and dedup/" in capsys.readouterr().err


def test_position_folders_are_moved_on_an_fsspec_output_too():
    """The rename works through fsspec (an s3:// output moves the same way): whole folders, nothing else."""
    import fsspec

    from xplus_release.training.pipeline.steps import migrate_position_folders

    fs = fsspec.filesystem("memory")
    for name in ("03-dedup/a.jsonl", "03-dedup/index/b.npz", "logs/dedup/c.json", "07-notastep/d"):
        fs.pipe(f"/old-run/{name}", name.encode())
    assert migrate_position_folders("memory://old-run") == [("03-dedup", "dedup")]
    assert sorted(fs.find("/old-run")) == ["/old-run/07-notastep/d", "/old-run/dedup/a.jsonl",
                                           "/old-run/dedup/index/b.npz", "/old-run/logs/dedup/c.json"]
    assert fs.cat("/old-run/dedup/index/b.npz") == b"03-dedup/index/b.npz"
    assert migrate_position_folders("memory://no-such-run") == []


def test_interrupted_stage_resumes_only_its_unfinished_ranks(demo_run, tmp_path, capsys):
    """langid's rank 1 fails midway (a shard it reads is broken) after rank 0 finished: the rerun does
    rank 1 only, then the stages that never ran, and ends with the same data."""
    output = tmp_path / "resumed"
    shutil.copytree(demo_run, output)
    for later in ("langid", "instruct", "merge"):
        shutil.rmtree(output / "logs" / later)
    shutil.rmtree(output / "langid")
    shutil.rmtree(output / "instruct")
    (output / "train.jsonl").unlink()
    rank1_shard = sorted((output / "dedup").glob("*.jsonl"))[1::2][
        -1
    ]  # datatrove: files[rank::world_size]
    intact = rank1_shard.read_bytes()
    lines = intact.splitlines(keepends=True)
    rank1_shard.write_bytes(b"".join(lines[:-1]) + b"{broken\n")
    argv = ["run", str(EXAMPLES / "flores-demo.yaml"), "--output", str(output), "--no-progress"]
    assert xplus_data(argv + ["--workers", "1", "--tasks", "2"]) == 2  # ranks one after the other
    assert f"{rank1_shard}:{len(lines)} is not JSON" in capsys.readouterr().err
    completions = output / "logs" / "langid" / "completions"
    assert sorted(p.name for p in completions.iterdir()) == ["00000"]
    assert list((output / "langid").glob("*.jsonl"))  # rank 1 had written part of its output
    rank0_stats = (output / "logs" / "langid" / "stats" / "00000.json").stat().st_mtime_ns
    rank1_shard.write_bytes(intact)
    assert xplus_data(argv) == 0
    report = json.loads((output / "report.json").read_text())
    assert report["processed_this_run"] == {
        "unify": 0,
        "clean": 0,
        "dedup-signatures": 0,
        "dedup-conflicts": 0,
        "dedup": 0,
        "langid": 1,
        "instruct": 2,
        "merge": 1,
    }
    assert (output / "logs" / "langid" / "stats" / "00000.json").stat().st_mtime_ns == rank0_stats
    assert (output / "train.jsonl").read_bytes() == (demo_run / "train.jsonl").read_bytes()
    assert all_drops(output) == all_drops(demo_run)


def test_killed_run_resumes_only_the_ranks_that_had_not_finished(tmp_path, flores_dir):
    """SIGKILL while unify's rank 1 is writing its shards (rank 0 finished): the rerun redoes rank 1 only
    and the output equals an uninterrupted run's."""
    import os
    import signal
    import subprocess
    import sys
    import time

    en, de = flores(flores_dir, "en"), flores(flores_dir, "de")
    write_jsonl(tmp_path / "small.jsonl", pair_rows(en[:10], de[:10], "en", "de"))
    big = pair_rows(en * 600, [f"{line} {i}" for i in range(600) for line in de], "en", "de")
    write_jsonl(tmp_path / "big.jsonl", big)  # 36,000 pairs: seconds of work for one rank
    (tmp_path / "p.yaml").write_text(
        "inputs: [{format: jsonl, path: small.jsonl}, {format: jsonl, path: big.jsonl}]\n"
        "workers: 1\nsteps: [{unify: {shard_size: 5000}}, clean]\n",
        encoding="utf-8",
    )
    command = [
        str(Path(sys.executable).with_name("xplus-data")),
        "run",
        str(tmp_path / "p.yaml"),
        "--no-progress",
    ]
    killed = tmp_path / "killed"
    run = subprocess.Popen(
        [*command, "--output", str(killed)], start_new_session=True, stderr=subprocess.DEVNULL
    )
    completions, first_shard = (
        killed / "logs" / "unify" / "completions",
        killed / "unify" / "big-00000.jsonl",
    )
    while run.poll() is None and not ((completions / "00000").exists() and first_shard.exists()):
        time.sleep(0.01)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert sorted(p.name for p in completions.iterdir()) == ["00000"]  # killed midway through rank 1
    rank0_stats = (killed / "logs" / "unify" / "stats" / "00000.json").stat().st_mtime_ns
    assert subprocess.run([*command, "--output", str(killed)], check=False).returncode == 0
    report = json.loads((killed / "report.json").read_text())
    assert report["processed_this_run"] == {"unify": 1, "clean": 1, "merge": 1}
    assert (killed / "logs" / "unify" / "stats" / "00000.json").stat().st_mtime_ns == rank0_stats
    assert (
        xplus_data(["run", str(tmp_path / "p.yaml"), "--output", str(tmp_path / "whole"), "--no-progress"])
        == 0
    )
    assert (killed / "train.jsonl").read_bytes() == (tmp_path / "whole" / "train.jsonl").read_bytes()
    assert report["steps"]["unify"]["kept"] == 10 + len(big)


def test_output_may_be_an_fsspec_url(demo_run):
    """datatrove writes through fsspec: an in-memory filesystem stands for s3:// here (one process, so the
    memory filesystem is shared by every rank)."""
    import fsspec

    argv = ["run", str(EXAMPLES / "flores-demo.yaml"), "--output", "memory://xplus-demo", "--no-progress"]
    assert xplus_data(argv + ["--workers", "1", "--tasks", "2"]) == 0
    memory = fsspec.filesystem("memory")
    assert memory.cat("/xplus-demo/train.jsonl") == (demo_run / "train.jsonl").read_bytes()
    report = json.loads(memory.cat("/xplus-demo/report.json"))
    assert report["steps"] == json.loads((demo_run / "report.json").read_text())["steps"]
    memory.rm("/xplus-demo", recursive=True)


# ---------------------------------------------------------------- bad input, one-step commands


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        ("steps: [unify, cleen]", "unknown pipeline option(s): steps.cleen; did you mean 'clean'?"),
        ("steps: [unify, {dedup: {hamm: 3}}]", "unknown pipeline option(s): steps.dedup.hamm; did you mean 'hamming'?"),
        ("steps: [unify, {langid: {model: nowhere/lid.bin}}]", "language-ID model file"),
        (
            "steps: [unify, {langid: {model: facebook/fasttext-language-identification}}]",
            "hf download facebook/fasttext-language-identification model.bin",
        ),
        ("steps: [clean, unify]", "steps must start with unify"),
        ("steps: [unify]\nworkerz: 2", "unknown pipeline option(s): workerz; did you mean 'workers'?"),
        ("steps: [unify, {instruct: {directions: sideways}}]", "unknown steps.instruct.directions 'sideways'; choose"),
        ("steps: [unify]\nengine: spark", "unknown engine 'spark'; choose local, ray or slurm"),
        (
            "steps: [unify]\nslurm: {partitoin: cpu}",
            "unknown pipeline option(s): slurm.partitoin; did you mean 'partition'?",
        ),
        ("steps: [unify, {dedup: {exact_duplicates: all}}]", "exact_duplicates 'all'; choose keep_first or paper"),
    ],
)
def test_bad_pipeline_yaml_is_one_line_error_before_any_work(tmp_path, capsys, yaml_text, message):
    (tmp_path / "x.tsv").write_text("a b\tc d\n", encoding="utf-8")
    (tmp_path / "p.yaml").write_text(
        f"output: {tmp_path / 'out'}\ninputs: [{{format: tsv, path: x.tsv, src: en, trg: de}}]\n"
        f"{yaml_text}\n",
        encoding="utf-8",
    )
    assert xplus_data(["run", str(tmp_path / "p.yaml"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not (tmp_path / "out").exists()


def write_tsv_pipeline(tmp_path: Path, steps: str, lines: int = 1) -> Path:
    rows = [f"a{i} b{i} c{i}\tx{i} y{i} z{i}\n" for i in range(lines)]
    (tmp_path / "x.tsv").write_text("".join(rows), encoding="utf-8")
    path = tmp_path / "p.yaml"
    path.write_text(
        f"output: {tmp_path / 'out'}\ninputs: [{{format: tsv, path: x.tsv, src: en, trg: de}}]\nsteps: {steps}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["steps.dedup.hamm=3"], "unknown pipeline option(s): steps.dedup.hamm; did you mean 'hamming'?"),
        (["workers=many"], "pipeline option workers: Input should be a valid integer"),
        (["output.path=x"], "--set output.path: output is not a mapping; set it whole, as output=VALUE"),
        (["steps=[unify, dedupe]"], "unknown pipeline option(s): steps.dedupe; did you mean 'dedup'?"),
    ],
)
def test_bad_set_on_a_pipeline_is_one_line_before_any_work(tmp_path, capsys, overrides, message):
    path = write_tsv_pipeline(tmp_path, "[unify, dedup]")
    argv = ["run", str(path), "--no-progress", *(item for o in overrides for item in ("--set", o))]
    assert xplus_data(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {message}")
    assert not (tmp_path / "out").exists()


def test_set_overrides_a_pipeline_key_and_wins_over_flags(tmp_path, capsys):
    path = write_tsv_pipeline(tmp_path, "[unify, {dedup: {hamming: 3}}]", lines=5)
    argv = ["run", str(path), "--no-progress", "--workers", "3", "--set", "workers=1",
            "--set", "steps.unify.shard_size=2", "--set", "steps.dedup.hamming=4"]
    assert xplus_data(argv) == 0
    out = tmp_path / "out"
    assert sorted(p.name for p in (out / "unify").glob("*.jsonl")) == [
        "x-00000.jsonl", "x-00001.jsonl", "x-00002.jsonl"]  # 5 pairs, 2 a shard
    assert json.loads((out / "dedup" / "step.json").read_text())["params"]["default"] == {"hamming": 4}
    config = load_pipeline(path, ["workers=1"], {"workers": 3})
    assert (config.workers, config.steps.names()) == (1, ("unify", "dedup"))


def test_one_step_commands_on_a_file(tmp_path, flores_dir, capsys):
    en, de = flores(flores_dir, "en"), flores(flores_dir, "de")
    (tmp_path / "raw.tsv").write_text(
        "".join(f"{a}\t{b}\n" for a, b in zip(en[:5], de[:5])) + "broken line\n", encoding="utf-8"
    )
    unify = [
        "unify",
        "--format",
        "tsv",
        "--src",
        "en",
        "--trg",
        "German",
        str(tmp_path / "raw.tsv"),
        "-o",
        str(tmp_path / "pairs.jsonl"),
        "--drops",
        str(tmp_path / "bad.jsonl"),
    ]
    assert xplus_data(unify) == 2  # 1 of 6 lines is over the default budget (1%)
    assert f"the malformed lines are in {tmp_path / 'bad.jsonl'}" in capsys.readouterr().err
    assert xplus_data(unify + ["--set", "error_budget=0.2"]) == 0
    pairs = read_jsonl(tmp_path / "pairs.jsonl")
    assert [(p["src"], p["trg"], p["tgt_line"]) for p in pairs] == [("en", "de", line) for line in de[:5]]
    assert [b["reason"] for b in read_jsonl(tmp_path / "bad.jsonl")] == ["wrong_column_count"]
    pairs[1]["tgt_line"] = "\u200b"
    write_jsonl(tmp_path / "pairs.jsonl", pairs)
    assert (
        xplus_data(
            [
                "clean",
                str(tmp_path / "pairs.jsonl"),
                "-o",
                str(tmp_path / "clean.jsonl"),
                "--drops",
                str(tmp_path / "drops.jsonl"),
                "--set",
                "normalization=NFKC",
            ]
        )
        == 0
    )
    assert len(read_jsonl(tmp_path / "clean.jsonl")) == 4
    assert [d["reason"] for d in read_jsonl(tmp_path / "drops.jsonl")] == ["empty_target"]
    assert "clean" in capsys.readouterr().out
    assert (
        xplus_data(
            ["dedup", str(tmp_path / "clean.jsonl"), "-o", str(tmp_path / "d.jsonl"), "--set", "hamming=65"]
        )
        == 2
    )
    assert "dedup needs 0 <= hamming < blocks <= 64" in capsys.readouterr().err
