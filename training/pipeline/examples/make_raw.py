"""Write the raw inputs of ``flores-demo.yaml`` from FLORES-200 devtest lines, with planted faults.

    python -m xplus_release.training.pipeline.examples.make_raw \\
        tests/data/flores200 training/pipeline/examples/raw

Four pairs in four formats (en-zh TSV, en-de Moses files, en-ja NLLB-style TSV.gz, en-ru JSONL), 40
sentence pairs each plus planted faults; ``faults.json`` lists every planted line and the step and
reason expected to remove it. FLORES-200 is CC-BY-SA 4.0 (see raw/NOTICE).
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

from xplus_release.languages import get_language

PAIRS = {"zh": "tsv", "de": "moses", "ja": "nllb", "ru": "jsonl"}
CLEAN_LINES = 40
NOTICE = (
    "Sentences from FLORES-200 devtest (https://github.com/facebookresearch/flores), licensed CC-BY-SA 4.0;\n"
    "faults were planted on purpose by make_raw.py to exercise the pipeline.\n"
)


def _lines(flores_dir: Path, code: str) -> list[str]:
    name = get_language(code).flores200
    return (flores_dir / "devtest" / f"{name}.devtest").read_text(encoding="utf-8").splitlines()


def _truncate(text: str, lang: str) -> str:
    return text[: max(2, len(text) // 20)] if lang in ("zh", "ja", "th") else " ".join(text.split()[:3])


def _swapped_expectation(trg: str) -> tuple[str, str]:
    # A swapped zh/ja sentence is tokenised as space-delimited words (its label says English), so the
    # length rules of dedup catch it before language ID does.
    return {"zh": ("dedup", "length_ratio"), "ja": ("dedup", "too_few_tokens")}.get(
        trg, ("langid", "lid_swapped")
    )


def _mislabelled_expectation(trg: str) -> tuple[str, str]:
    # French read as zh/ja is tokenised per character: far longer than the English side.
    return ("dedup", "length_ratio") if trg in ("zh", "ja") else ("langid", "lid_target_mismatch")


# Clean FLORES lines that lid.176 gets wrong (the NLLB LID model is the default for a reason).
KNOWN_LID176_ERRORS = {
    "zh": [(37, "lid_target_mismatch", "lid.176 reads this digit-heavy Chinese line as Japanese")]
}


def planted_pairs(
    en: list[str], tgt: list[str], trg: str, other: list[str]
) -> tuple[list[tuple[str, str]], list[dict]]:
    """40 clean pairs, then the faults (each with the step and reason that must remove it)."""
    pairs = list(zip(en[:CLEAN_LINES], tgt[:CLEAN_LINES]))
    faults = [
        (
            en[0],
            tgt[0],
            "dedup",
            "exact_duplicate",
            "copy of line 1: the first copy is kept, this one dropped",
        ),
        (en[0], tgt[0], "dedup", "exact_duplicate", "second copy (the paper's literal reading keeps it)"),
        (en[0] + " ", tgt[0], "dedup", "exact_duplicate", "third copy with a trailing space"),
        (
            en[0].rstrip(".") + "!",
            tgt[0],
            "dedup",
            "exact_duplicate",
            "punctuation-only variant: the same tokens as line 1",
        ),
        (tgt[41], en[41], *_swapped_expectation(trg), "source and target swapped"),
        (en[42], other[42], *_mislabelled_expectation(trg), "target in French"),
        (en[43], _truncate(tgt[43], trg), "dedup", "length_ratio", "truncated target"),
        ("Yes.", tgt[44], "dedup", "too_few_tokens", "one-word source"),
        (
            en[45] + "\u200b\u0007",
            "\ufeff" + tgt[45],
            "clean",
            None,
            "control/zero-width characters, cleaned and kept",
        ),
        (en[46], "\u200b \u0003", "clean", "empty_target", "target of invisible characters only"),
    ]
    expected = [
        {"line": line, "step": "langid", "reason": reason, "what": what}
        for line, reason, what in KNOWN_LID176_ERRORS.get(trg, [])
    ]
    for src, tgt_text, step, reason, what in faults:
        pairs.append((src, tgt_text))
        expected.append({"line": len(pairs), "step": step, "reason": reason, "what": what})
    return pairs, expected


def write_raw(flores_dir: Path, out_dir: Path) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    en, other = _lines(flores_dir, "en"), _lines(flores_dir, "fr")
    manifest = {}
    for trg, fmt in PAIRS.items():
        pairs, faults = planted_pairs(en, _lines(flores_dir, trg), trg, other)
        manifest[f"en-{trg}"] = {
            "format": fmt,
            "pairs": len(pairs),
            "faults": faults,
            "malformed": WRITERS[fmt](out_dir, trg, pairs),
        }
    (out_dir / "faults.json").write_text(
        json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (out_dir / "NOTICE").write_text(NOTICE, encoding="utf-8")
    return manifest


def _write_tsv(out_dir: Path, trg: str, pairs) -> list[str]:
    lines = [f"{s}\t{t}".encode() for s, t in pairs] + [b"a line without a tab", b"bad \xff\xfe bytes\tok"]
    (out_dir / f"en-{trg}.tsv").write_bytes(b"\n".join(lines) + b"\n")
    return ["wrong_column_count", "invalid_utf8"]


def _write_moses(out_dir: Path, trg: str, pairs) -> list[str]:
    (out_dir / f"en-{trg}.en").write_text("\n".join(s for s, _ in pairs) + "\n", encoding="utf-8")
    (out_dir / f"en-{trg}.{trg}").write_text("\n".join(t for _, t in pairs) + "\n", encoding="utf-8")
    return []


def _write_nllb(out_dir: Path, trg: str, pairs) -> list[str]:
    name = f"eng_Latn-{get_language(trg).flores200}.gz"
    rows = [
        f"{s}\t{t}\t1.12\t0.98\t0.97\tCCMatrix\thttp://example.org/a\tCCMatrix\thttp://example.org/b"
        for s, t in pairs
    ]
    rows.append("only\tthree\tcolumns")
    with gzip.open(out_dir / name, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(rows) + "\n")
    return ["wrong_column_count"]


def _write_jsonl(out_dir: Path, trg: str, pairs) -> list[str]:
    rows = [
        json.dumps({"src": "en", "trg": trg, "src_line": s, "tgt_line": t}, ensure_ascii=False)
        for s, t in pairs
    ]
    rows.append('{"src": "en", "trg": "ru", "src_line": "cut off')
    (out_dir / f"en-{trg}.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return ["bad_json"]


WRITERS = {"tsv": _write_tsv, "moses": _write_moses, "nllb": _write_nllb, "jsonl": _write_jsonl}

if __name__ == "__main__":
    write_raw(Path(sys.argv[1]), Path(sys.argv[2]))
