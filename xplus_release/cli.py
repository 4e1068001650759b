"""CLI wiring shared by every console script: one-line errors, the common model/engine options.

Each command's ``main`` is wrapped by ``run_cli``: a package error (``XPlusError``) is printed as one line
``error: …`` on stderr with a non-zero exit, never as a traceback; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable

from xplus_release.errors import XPlusError


def run_cli(main: Callable[[list[str] | None], int | None]) -> Callable[[list[str] | None], int]:
    @functools.wraps(main)
    def wrapper(argv: list[str] | None = None) -> int:
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # vLLM's INFO lines drown the progress bars
        try:
            return int(main(argv) or 0)
        except XPlusError as err:
            first, _, rest = str(err).partition("\n")
            print(f"error: {first}", file=sys.stderr)
            if rest and os.environ.get("XPLUS_VERBOSE_ERRORS", "1") != "0":
                print(rest, file=sys.stderr)  # e.g. a server's last log lines
            return err.exit_code
        except KeyboardInterrupt:
            print("interrupted; rerun the same command to resume", file=sys.stderr)
            return 130

    return wrapper


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model and the engine options every command that runs a model takes."""
    group = parser.add_argument_group("model and engine")
    group.add_argument("--model", default="xplus-tiny",
                       help="registered name (e.g. LLaMAX/Qwen3-XPlus-8B, xplus-tiny), local folder or hub id "
                            "(default: xplus-tiny; xplus-tiny is a random-weight test model whose outputs are noise)")
    group.add_argument("--endpoint", metavar="URL",
                       help="use a running OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1) instead of "
                            "loading the model in this process; --model must be its served model name")
    group.add_argument("--api-key", default=os.environ.get("XPLUS_API_KEY"),
                       help="API key for --endpoint (default: $XPLUS_API_KEY)")
    group.add_argument("--tensor-parallel-size", "-tp", type=int, default=1, help="GPUs per model replica (vLLM)")
    group.add_argument("--max-model-len", type=int, help="context length (default: the registry's, 32768 for Qwen3)")
    # vLLM's server batches up to 256 sequences by default: fewer in flight leaves its batch part empty
    group.add_argument("--concurrency", type=int, default=256,
                       help="requests kept in flight against the server (default 256)")


def engine_from_args(args: argparse.Namespace):
    """Open the engine the common options describe (see ``add_model_arguments``)."""
    from xplus_release.engines import open_engine

    if args.endpoint:
        engine = open_engine(args.model, endpoint=args.endpoint, api_key=args.api_key, concurrency=args.concurrency)
        engine.check()
        return engine
    return open_engine(args.model, tensor_parallel_size=args.tensor_parallel_size, max_model_len=args.max_model_len)
