"""``xplus-serve keys add|list|revoke``: manage the API keys file of ``xplus-serve --api-keys FILE``.

    xplus-serve keys add alice --file keys.yaml --rpm 120 --chars-per-minute 200000 --concurrency 8
    xplus-serve keys add bob --file keys.yaml --chars-per-day 50000 --chars-per-month 500000
    xplus-serve keys list --file keys.yaml
    xplus-serve keys revoke alice --file keys.yaml

``add`` prints the new key once, on stdout (only its SHA-256 is stored: it cannot be shown again). A running
server picks up every change within a second. --file defaults to $XPLUS_API_KEYS_FILE.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

from xplus_release.config import add_flags, flag_name, from_flags
from xplus_release.errors import ConfigError
from xplus_release.serve.keys import (
    KeyEntry,
    KeyLimits,
    KeysFile,
    hash_key,
    load_keys,
    locked,
    save_keys,
    usage_path,
)

KEY_PREFIX = "xpk-"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xplus-serve keys", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{add,list,revoke}")
    add = commands.add_parser("add", help="create a key: prints it once, stores its SHA-256")
    add.add_argument("name", help="who the key is for (letters, digits, '.', '_', '-'); shown in usage and metrics")
    add_flags(add, KeyLimits)
    listing = commands.add_parser("list", help="the keys, their limits and usage (no key is ever shown)")
    revoke = commands.add_parser("revoke", help="disable a key (kept in the file, so its usage stays named)")
    revoke.add_argument("name")
    for sub in (add, listing, revoke):
        sub.add_argument("--file", type=Path, default=os.environ.get("XPLUS_API_KEYS_FILE"),
                         help="the keys file (default: $XPLUS_API_KEYS_FILE)")
    return parser


def main(argv: list[str]) -> int:
    """Raises: ConfigError for a missing --file, a bad file, an existing or unknown name, a limit below 1."""
    args = build_parser().parse_args(argv)
    if args.file is None:
        raise ConfigError("no keys file: pass --file PATH or set XPLUS_API_KEYS_FILE")
    return {"add": add_key, "list": list_keys, "revoke": revoke_key}[args.command](args)


def add_key(args: argparse.Namespace) -> int:
    limits = from_flags(KeyLimits, args)  # ConfigError naming the flag for a limit below 1
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with locked(args.file):
        keys = load_keys(args.file) if args.file.exists() else KeysFile()
        if keys.get(args.name) is not None:
            raise ConfigError(f"a key named {args.name!r} already exists in {args.file}; pick another name "
                              f"(or revoke it and add a new name)")
        entry = KeyEntry.build({"name": args.name, "sha256": hash_key(key), "limits": limits})
        save_keys(args.file, KeysFile.build({"keys": (*keys.keys, entry)}))
    print(f"added key {args.name!r} to {args.file}; it is shown only now:", file=sys.stderr)
    print(key)
    return 0


def revoke_key(args: argparse.Namespace) -> int:
    with locked(args.file):
        keys = load_keys(args.file)
        if keys.get(args.name) is None:
            known = ", ".join(e.name for e in keys.keys) or "none"
            raise ConfigError(f"no key named {args.name!r} in {args.file}; known: {known}")
        entries = tuple(e.model_copy(update={"enabled": False}) if e.name == args.name else e for e in keys.keys)
        save_keys(args.file, KeysFile.build({"keys": entries}))
    print(f"revoked key {args.name!r}; a running server refuses it within a second", file=sys.stderr)
    return 0


def list_keys(args: argparse.Namespace) -> int:
    keys = load_keys(args.file)
    usage = _usage_totals(usage_path(args.file))
    limits = {name: flag_name(KeyLimits, name) for name in KeyLimits.model_fields}  # a column per limit, by its flag
    print(f"{'name':<20} {'enabled':<8} {'sha256':<10} " + " ".join(f"{h:>7}" for h in limits.values()) +
          f" {'requests':>9} {'characters':>11}")
    for e in keys.keys:
        used = usage.get(e.name, {})
        print(f"{e.name:<20} {'yes' if e.enabled else 'REVOKED':<8} {e.sha256[:8]:<10} " +
              " ".join(f"{_shown(getattr(e.limits, name)):>{max(7, len(h))}}" for name, h in limits.items()) +
              f" {used.get('requests', 0):>9} {used.get('characters', 0):>11}")
    return 0


def _shown(limit: int | None) -> str:
    return "-" if limit is None else str(limit)  # a quota that is not set


def _usage_totals(path: Path) -> dict[str, dict[str, int]]:
    """What the usage database has written so far (a running server adds the last second's later)."""
    if not path.exists():
        return {}
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        totals: dict[str, dict[str, int]] = {}
        for key, counter, value in db.execute("SELECT key, counter, value FROM usage"):
            totals.setdefault(key, {})[counter] = value
        return totals
