"""The request loop every managed-environment worker shares: ``--input IN.jsonl --output OUT.jsonl``.

A worker runs under its environment's Python, where this package is not installed: ``ManagedEnv.run_worker``
puts this folder on the worker's ``PYTHONPATH`` (it holds nothing else, so no name here can shadow a tool's
own modules), and this module uses the standard library only.
"""

import argparse
import json
from collections.abc import Callable, Iterable


def run_jsonl_worker(handle: Callable[[list[dict], argparse.Namespace], Iterable[dict]], description: str,
                     add_arguments: Callable[[argparse.ArgumentParser], None] | None = None) -> None:
    """Read the input rows, ``handle`` them, write what it returns as the output rows.

    The output file is written only once ``handle`` has returned, so a worker that fails leaves none and
    ``ManagedEnv.run_worker`` reports the failure instead of reading half an answer.
    """
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="JSONL file of request rows")
    parser.add_argument("--output", required=True, help="JSONL file the answer rows are written to")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args()
    with open(args.input, encoding="utf-8") as source:
        rows = [json.loads(line) for line in source if line.strip()]
    answers = list(handle(rows, args))
    with open(args.output, "w", encoding="utf-8") as target:
        target.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in answers)
