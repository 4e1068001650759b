"""``xplus-eval``: the evaluation command.

Suite commands come from the suite registry (``SUITES``: each suite names its command module); other
commands are listed in ``OTHER_COMMANDS``. A subcommand module exposes ``add_parser(subparsers)``, which adds its parser and sets ``func`` (called
with the parsed args, returning the exit code). Every suite command (``translation``, ``multilingual``,
``reasoning``, ``all``) is made by ``add_suite_command``: the model and run flags, one group of flags per
suite generated from its options model, ``--config`` and ``--set``, and ``run_suites`` behind it. Other
subcommands (``compare``, ``fetch-data``) add a plain parser. Modules import heavy dependencies inside
``func`` so that ``xplus-eval --help`` stays fast.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import sys
from pathlib import Path

from xplus_release.cli import add_model_arguments, run_cli
from xplus_release.config import add_flags, given_flags, load_yaml_mapping, parse_overrides
from xplus_release.errors import ConfigError
from xplus_release.evalsuite.base import SUITES, suite_options

# commands that are not one suite's, listed in --help after the suites' own
OTHER_COMMANDS: tuple[str, ...] = (
    "xplus_release.evalsuite.translation.compare_cli",
    "xplus_release.evalsuite.all",
    "xplus_release.evalsuite.fetch",
    "xplus_release.evalsuite.view.cli",
    "xplus_release.evalsuite.sweep.cli",
)
# options every suite of ``all`` shares, given once (``--max-tokens``) rather than once per suite
SHARED_OPTIONS = ("max_tokens",)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xplus-eval",
        description="Evaluate a model on the paper's benchmarks; every run writes one folder "
                    "(run.json, generations/, scores.json, report.md, plots) and resumes where it stopped.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in [spec.command for spec in SUITES.values() if spec.command] + list(OTHER_COMMANDS):
        importlib.import_module(module).add_parser(subparsers)
    return parser


def add_suite_command(subparsers, command: str, suite: str | None, title: str, **parser_kwargs) -> argparse.ArgumentParser:
    """The subcommand ``command`` running ``suite`` (None: any registered suites, chosen by ``--suites``)
    through ``run_suites``; ``title`` (with ``{model}``) heads its report."""
    from xplus_release.evalsuite.common import MODEL_FIELDS, RunOptions

    parser = subparsers.add_parser(command, formatter_class=argparse.RawDescriptionHelpFormatter, **parser_kwargs)
    add_model_arguments(parser)
    run = parser.add_argument_group("run")
    add_flags(run, RunOptions, exclude=MODEL_FIELDS)
    run.add_argument("--config", type=Path, metavar="YAML",
                     help="suite options from a YAML file, as {suite: {option: value}}" +
                          (" or the options alone" if suite else "") + "; flags given on the command line win")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="one suite option, e.g. " + ("--set max_tokens=64" if suite else
                                                       "--set translation.langs=en,zh") + "; wins over flags")
    if suite is None:
        run.add_argument("--suites", metavar="LIST",
                         help=f"comma-separated suites, in run order (default: all registered: {', '.join(SUITES)})")
        run.add_argument("--max-tokens", type=int, dest="max_tokens", default=argparse.SUPPRESS,
                         help="cap on generated tokens per item, for every suite (default: each suite's own)")
    for name in [suite] if suite else SUITES:
        group = parser.add_argument_group(f"{name} options")
        add_flags(group, suite_options(name), prefix="" if suite else f"{name}-",
                  exclude=() if suite else SHARED_OPTIONS)
    parser.set_defaults(func=functools.partial(_run_command, command, suite, title))
    return parser


def parse_suites(text: str | None) -> list[str]:
    """Raises: ConfigError: an unknown or empty suite list (the message lists the valid ones)."""
    if text is None:
        return list(SUITES)
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in SUITES]
    if unknown or not names:
        raise ConfigError(f"unknown suite {', '.join(unknown) or '(none)'}; choose from: {', '.join(SUITES)}")
    return names


def _run_command(command: str, suite: str | None, title: str, args: argparse.Namespace) -> int:
    from xplus_release.evalsuite.common import RunOptions, run_suites

    run_opts = RunOptions.build(given_flags(RunOptions, args))
    names = [suite] if suite else parse_suites(args.suites)
    config = load_yaml_mapping(args.config) if args.config else {}
    sets = parse_overrides(args.set)
    strays = [key for key in sets if suite is None and key.partition(".")[0] not in names]
    if strays:
        raise ConfigError(f"--set {strays[0]}: name the suite, as SUITE.OPTION with SUITE one of {', '.join(names)}")
    options = {name: _suite_options(name, args, config, sets, single=suite is not None) for name in names}
    return run_suites(run_opts, options, command, title.format(model=run_opts.model))


def _suite_options(name: str, args: argparse.Namespace, config: dict, sets: dict, single: bool):
    """Options of suite ``name``: YAML, then flags, then ``--set`` (later wins)."""
    model = suite_options(name)
    values = dict(config.get(name, config if single else {}))
    values.update(given_flags(model, args, "" if single else f"{name}-"))
    if not single and "max_tokens" in model.model_fields and hasattr(args, "max_tokens"):
        values["max_tokens"] = args.max_tokens
    for key, value in sets.items():
        suite, dot, option = key.rpartition(".")
        if (dot and suite == name) or (single and not dot):
            values[option] = value
    return model.build(values)


@run_cli
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
