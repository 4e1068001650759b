"""``xplus-eval view RUN [RUN ...]``: explore run folders in the browser (Gradio).

    xplus-eval view runs/xplus-tiny-translation
    xplus-eval view runs/Qwen_Qwen3-8B-translation runs/LLaMAX_Qwen3-XPlus-8B-translation --port 7861

Overview (aggregates beside the paper, fidelity), Translation (a heatmap per metric: click a cell to open
the direction; with two or more runs the difference of the last and the first, with paired-bootstrap
marks), direction pages (source, reference, each run's output, sentence chrF/spBLEU/xCOMET, xCOMET error
spans by severity; sort, filter, search, CSV), and lm-eval/OpenCompass samples. The folders are read as
they are on disk, nothing is copied: a run still being written shows as far as it goes.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("view", help="explore run folders in the browser (heatmaps, segments, samples)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN",
                        help="run folders (the --output of xplus-eval), or a sweep's output folder (its runs, in "
                             "the sweep's order); with several, the last is compared with the first")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    parser.set_defaults(func=run_view)


def run_view(args: argparse.Namespace) -> int:
    from xplus_release.errors import ConfigError
    from xplus_release.evalsuite.view.app import build_view

    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535, got {args.port}")
    blocks = build_view(expand_sweeps(args.runs))  # checks every folder before the server starts
    try:
        blocks.launch(server_name=args.host, server_port=args.port, quiet=True, footer_links=["api"],
                      prevent_thread_lock=True)
    except OSError as err:  # gradio's "Cannot find empty port" and bind errors
        raise ConfigError(f"cannot listen on {args.host}:{args.port} ({str(err).splitlines()[0]}); "
                          "pass another --port") from None
    print(f"xplus-eval view: http://{args.host}:{args.port}/  (Ctrl-C stops)", flush=True)
    blocks.block_thread()
    return 0


def expand_sweeps(paths: list[Path]) -> list[Path]:
    """Each path as it is, except a sweep's output folder (``xplus-eval sweep``), which stands for the run
    folders of its models that have started, in the sweep file's order."""
    from xplus_release.evalsuite.sweep.jobs import SWEEP_FILE
    from xplus_release.runs import RUN_FILE, read_json

    runs: list[Path] = []
    for path in paths:
        if (path / SWEEP_FILE).is_file():
            names = read_json(path / SWEEP_FILE).get("models", [])
            runs += [path / name for name in names if (path / name / RUN_FILE).is_file()]
        else:
            runs.append(path)
    return runs
