"""``xplus-eval multilingual``: the paper's multilingual tasks through lm-eval against a vLLM server.

Without ``--endpoint`` a vLLM OpenAI server is started for ``--model`` (and stopped at the end); with it,
the running server is used and must serve ``--model``.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

from xplus_release.evalsuite.multilingual.tasks import TASKS

from xplus_release.cli import add_model_arguments

EXAMPLE = """examples:
  xplus-eval multilingual --model LLaMAX/Qwen3-XPlus-8B
  xplus-eval multilingual --model xplus-tiny --tasks xnli,mgsm --langs paper --limit 4 --max-gen-toks 32
  xplus-eval multilingual --model LLaMAX/Qwen3-XPlus-8B --endpoint http://127.0.0.1:8000/v1 --tasks xcopa
  xplus-eval multilingual --model xplus-tiny --tasks xgpqa --langs de --limit 2 --benchmax-dir ~/BenchMAX

xifeval, xgpqa and mgsm run BenchMAX's own lm-eval task folders (github.com/CONE-MT/BenchMAX at
d509bfdefa43): from --benchmax-dir, or from the data dir `xplus-eval fetch-data` fills.

tasks:
""" + "\n".join(f"  {name:<15} {spec.description}" for name, spec in TASKS.items())


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "multilingual",
        help="XNLI, XStoryCloze, XCOPA, XWinograd, MGSM, xIFEval, XGPQA (BenchMAX), MathQA, HumanEval+ (lm-eval)",
        description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    # None = the suite's default (every task, all languages; xplus-tiny: its embedded sample)
    parser.add_argument("--tasks", help="comma-separated tasks (default: all; see the list below)")
    parser.add_argument("--langs",
                        help="all: each task's full language set as lm-eval defines it, comparable with the paper "
                             "(default); paper: only the paper's 17 languages; or codes such as en,sw,zh")
    parser.add_argument("--limit", type=int, help="at most N items per task and language (smoke runs)")
    parser.add_argument("--max-gen-toks", type=int,
                        help="cap on generated tokens for every generation task (default: each task's own)")
    parser.add_argument("--thinking", action=argparse.BooleanOptionalAction, default=None,
                        help="Qwen3 thinking for generation tasks (default: the model's registry default, off)")
    parser.add_argument("--output", type=Path,
                        help="run folder (default: runs/<model>); a rerun skips tasks already there")
    parser.add_argument("--force", action="store_true", help="rerun tasks the run folder already has")
    parser.add_argument("--data-dir", type=Path,
                        help="datasets for offline runs: a folder `xplus-eval fetch-data` filled (hub cache under "
                             "hf/hub) or JSONL copies as <dataset>/<config>/<split>.jsonl (default: the Hugging "
                             "Face cache)")
    parser.add_argument("--benchmax-dir", type=Path, metavar="DIR",
                        help="a BenchMAX checkout (the folder holding tasks/) for xifeval, xgpqa and mgsm (default: "
                             "DATA_DIR/benchmax, which `xplus-eval fetch-data` fills)")
    parser.add_argument("--startup-timeout", type=float, default=900.0,
                        help="seconds to wait for the vLLM server this command starts (default 900)")
    parser.set_defaults(func=run_command)
    return parser


def default_output(model: str) -> Path:
    return Path("runs") / re.sub(r"[^\w.-]+", "__", model.strip("/"))


def run_command(args: argparse.Namespace) -> int:
    from xplus_release.evalsuite.base import EvalContext, write_report
    from xplus_release.evalsuite.endpoint import serve_or_attach
    from xplus_release.evalsuite.multilingual.suite import SAMPLE_DATA, MultilingualSuite, locate_benchmax
    from xplus_release.evalsuite.multilingual.tasks import select

    from xplus_release.registry import is_test_model
    from xplus_release.runs import RunFolder

    logging.getLogger("lm_eval").setLevel(logging.WARNING)  # its INFO lines drown the progress bars
    options = {"tasks": args.tasks, "langs": args.langs, "max_gen_toks": args.max_gen_toks,
               "thinking": args.thinking, "concurrency": min(args.concurrency, 32),
               "max_model_len": args.max_model_len, "benchmax_dir": args.benchmax_dir}
    # reject a bad --tasks/--langs, and find BenchMAX's folders, before a server is started
    if args.tasks is not None or not is_test_model(args.model):  # else: the sample's tasks, chosen in run
        selection = select(args.tasks, args.langs)
        data_dir = args.data_dir or (SAMPLE_DATA if is_test_model(args.model) else None)
        locate_benchmax([spec for spec, _ in selection], args.benchmax_dir, data_dir)
    run = RunFolder.open(args.output or default_output(args.model), args.model)
    suite = MultilingualSuite()

    def evaluate(endpoint: str, api_key: str | None) -> dict:
        ctx = EvalContext(run=run, model=args.model, engine_factory=_no_engine, endpoint=endpoint, api_key=api_key,
                          limit=args.limit, force=args.force, data_dir=args.data_dir, options=options)
        return suite.run(ctx)

    with serve_or_attach(args) as endpoint:
        scores = evaluate(endpoint.base_url, endpoint.api_key)
    report = write_report(run, f"Multilingual evaluation of {args.model}", [suite.report(run, scores)])
    for entry in scores["tasks"].values():
        print(f"{entry['paper_name']:<12} {entry['score']:6.2f}  ({entry['metric']}, {len(entry['languages'])} languages)")
    print(f"report: {report}", file=sys.stderr)
    return 0


def _no_engine():
    raise RuntimeError("the multilingual suite talks to the server through lm-eval, never through a chat engine")
