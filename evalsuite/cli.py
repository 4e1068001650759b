"""``xplus-eval``: the evaluation command. Each subcommand lives in its suite's module.

A subcommand module exposes ``add_parser(subparsers)``, which adds its parser and sets ``func`` (called
with the parsed args, returning the exit code). Modules import their heavy dependencies inside ``func``
so that ``xplus-eval --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from xplus_release.cli import run_cli

# subcommand modules, in the order --help lists them; each suite adds its line here
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "xplus_release.evalsuite.translation.cli",
    "xplus_release.evalsuite.translation.compare_cli",
    "xplus_release.evalsuite.multilingual.cli",
    "xplus_release.evalsuite.reasoning.cli",
    "xplus_release.evalsuite.all",
    "xplus_release.evalsuite.fetch",
    "xplus_release.evalsuite.view.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xplus-eval",
        description="Evaluate a model on the paper's benchmarks; every run writes one folder "
                    "(run.json, generations/, scores.json, report.md, plots) and resumes where it stopped.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMAND_MODULES:
        importlib.import_module(module).add_parser(subparsers)
    return parser


@run_cli
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
