"""CLI wiring shared by every console script: one-line errors, the common model/engine flags.

Each command's ``main`` is wrapped by ``run_cli``: a package error (``XPlusError``) is printed as one line
``error: …`` on stderr with a non-zero exit, never as a traceback; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable

from xplus_release.config import add_flags
from xplus_release.errors import XPlusError
from xplus_release.options import ModelOptions


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


def add_model_arguments(parser: argparse.ArgumentParser, exclude: tuple[str, ...] = ()) -> None:
    """The flags of ``ModelOptions`` (--model and the engine options), as one help group; read them back
    with ``from_flags(ModelOptions, args)``."""
    add_flags(parser.add_argument_group("model and engine"), ModelOptions, exclude=exclude)
