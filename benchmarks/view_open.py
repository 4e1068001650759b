"""How fast ``xplus-eval view`` opens a full-grid run, printed as JSON with ratios against the baseline.

A synthetic run of the paper's grid (17 languages, 272 directions x 1,012 segments = 275,264 records,
written by ``runs.GenerationStore`` in the suite's record format, from the package's FLORES sample made
unique per segment) plus an xCOMET file per direction with error spans, and scores.json.

- **view**: what the page does on load (``build_view``, the Overview tables, a 17x17 heatmap), then the
  first page of a direction (read lazily: that direction's 1,012 records and sentence scores), then the
  next pages and a re-sort (served from the per-direction cache).
- **baseline**: reading every generation before showing anything, as a notebook (``pandas.read_json``
  of each file) or the project's own whole-run reader (``compare.load_run_generations``) does.

    .venv/bin/python benchmarks/view_open.py                         # 17 languages, 1,012 segments
    .venv/bin/python benchmarks/view_open.py --langs en,zh,sw,de --segments 200 --keep /tmp/view-run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--langs", default="paper", help="comma-separated codes, or paper (the 17 languages)")
    parser.add_argument("--segments", type=int, default=1012, help="segments per direction")
    parser.add_argument("--pages", type=int, default=5, help="pages of 25 segments read after the first")
    parser.add_argument("--keep", type=Path, help="write the synthetic run here and keep it (default: a temp folder)")
    return parser.parse_args()


def build_run(path: Path, codes: list[str], segments: int) -> int:
    """The synthetic run; returns the number of generation records written."""
    from tqdm.auto import tqdm

    from xplus_release.evalsuite.translation.aggregate import aggregate
    from xplus_release.evalsuite.translation.data import load_flores
    from xplus_release.evalsuite.translation.xcomet import segment_key
    from xplus_release.languages import get_language
    from xplus_release.runs import RunFolder

    texts = load_flores([get_language(c) for c in codes], "flores200-sample")
    run = RunFolder.open(path, "synthetic-model")
    directions = {}
    pairs = [(s, t) for s in codes for t in codes if s != t]
    for src, tgt in tqdm(pairs, desc="synthetic run", unit="direction"):
        direction = f"{src}-{tgt}"
        records, comet = [], []
        for i in range(segments):
            line = i % len(texts[src])
            source, reference = f"{texts[src][line]} ({i})", f"{texts[tgt][line]} ({i})"
            hypothesis = f"{texts[tgt][(line + 1) % len(texts[tgt])]} ({i})"
            item = f"{direction}:{i}"
            records.append({"item_id": item, "model": "synthetic-model", "prompt_hash": "p", "direction": direction,
                            "index": i, "source": source, "reference": reference, "output": hypothesis,
                            "hypothesis": hypothesis, "finish_reason": "stop", "prompt_tokens": 90,
                            "completion_tokens": 50})
            comet.append({"item_id": item, "model": "Unbabel/XCOMET-XL",
                          "prompt_hash": segment_key(source, hypothesis, reference), "score": 50.0 + i % 50,
                          "error_spans": [{"text": hypothesis[:5], "confidence": 0.5, "severity": "major",
                                           "start": 0, "end": 5}]})
        run.generations("translation", direction).append(records)
        run.generations("translation", f"xcomet/{direction}").append(comet)
        directions[direction] = {"segments": segments, "empty": 0, "truncated": 0,
                                 "chrf": 20.0 + len(direction) + codes.index(tgt), "xcomet": 60.0}
    settings = {"langs": codes, "metrics": ["chrf", "xcomet"], "spbleu_tokenizer": "flores200"}
    run.write_scores("translation", {"settings": settings, "signatures": {}, "directions": directions,
                                     "aggregates": aggregate(directions, codes, ["chrf", "xcomet"])})
    return len(pairs) * segments


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def bench_view(path: Path, direction: str, pages: int) -> dict:
    from xplus_release.evalsuite.view.app import Explorer, build_view
    from xplus_release.evalsuite.view.reading import open_runs

    label = path.resolve().name
    open_s, _ = timed(lambda: (build_view([path]), Explorer(open_runs([path])).overview(),
                               Explorer(open_runs([path])).heatmap("chrf", label, {})))
    explorer = Explorer(open_runs([path]))
    controls = ["sentence", "chrf", label, False, "all", ""]
    first_s, html = timed(lambda: explorer.direction_page(direction, *controls, 1, 25))
    assert html.count("<tr data-index=") == 25
    next_s, _ = timed(lambda: [explorer.direction_page(direction, *controls, p, 25) for p in range(2, 2 + pages)])
    sort_s, _ = timed(lambda: explorer.direction_page(direction, "score", "xcomet", label, True, "all", "", 1, 25))
    return {"open_s": round(open_s, 3), "first_direction_page_s": round(first_s, 3),
            "next_page_s": round(next_s / pages, 4), "resort_s": round(sort_s, 4)}


def bench_baselines(path: Path) -> dict:
    import pandas as pd

    from xplus_release.evalsuite.translation.compare import load_run_generations

    files = sorted((path / "generations" / "translation").glob("*.jsonl"))
    pandas_s, frames = timed(lambda: [pd.read_json(f, lines=True) for f in files])
    reader_s, generations = timed(lambda: load_run_generations(path))
    return {"pandas_read_all_s": round(pandas_s, 3), "load_run_generations_s": round(reader_s, 3),
            "records_read": sum(len(f) for f in frames), "directions_read": len(generations)}


def main() -> None:
    args = parse_args()
    from xplus_release.languages import PAPER_LANGUAGES

    codes = [lang.code for lang in PAPER_LANGUAGES] if args.langs == "paper" else args.langs.split(",")
    folder = args.keep or Path(tempfile.mkdtemp(prefix="view-bench-"))
    path = folder / "synthetic-run"
    build_s, records = timed(lambda: build_run(path, codes, args.segments))
    size = sum(f.stat().st_size for f in path.rglob("*.jsonl"))
    import gradio  # noqa: F401  -- imports are paid once per process, by either side: not timed
    import matplotlib.pyplot  # noqa: F401
    import pandas  # noqa: F401

    view = bench_view(path, f"{codes[-1]}-{codes[0]}", args.pages)
    baseline = bench_baselines(path)
    if not args.keep:
        shutil.rmtree(folder)
    print(json.dumps({
        "benchmark": "view_open", "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "run": {"languages": len(codes), "directions": len(codes) * (len(codes) - 1), "segments": records,
                "jsonl_mb": round(size / 2**20, 1), "build_s": round(build_s, 1), "path": str(path)},
        "view": view, "baseline": baseline,
        "ratios": {
            "open_vs_pandas_read_all": round(baseline["pandas_read_all_s"] / view["open_s"], 1),
            "open_vs_load_run_generations": round(baseline["load_run_generations_s"] / view["open_s"], 1),
            "open_plus_first_page_vs_pandas_read_all": round(
                baseline["pandas_read_all_s"] / (view["open_s"] + view["first_direction_page_s"]), 1),
        },
    }, indent=2))


if __name__ == "__main__":
    main()
