"""Downloads OpenCompass's own data archives with OpenCompass's own downloader (runs in its managed env).

Input rows: ``{"path": "data/mbpp/mbpp.jsonl"}`` relative to ``$COMPASS_DATA_CACHE``. Output rows:
``{"path": ..., "ok": bool, "error": str | None}``; one failed archive does not stop the others.
"""

import argparse
import json
import os


def fetch(path: str, root: str) -> dict:
    from opencompass.utils.datasets import download_dataset

    if os.path.exists(os.path.join(root, path)):
        return {"path": path, "ok": True, "error": None}
    try:
        download_dataset("./" + path, root)
    except Exception as err:  # noqa: BLE001 - reported per archive; the caller turns failures into one error
        return {"path": path, "ok": False, "error": f"{type(err).__name__}: {err}"}
    return {"path": path, "ok": os.path.exists(os.path.join(root, path)), "error": None}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    root = os.environ["COMPASS_DATA_CACHE"]
    with open(args.input, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    with open(args.output, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(fetch(row["path"], root)) + "\n" for row in rows)


if __name__ == "__main__":
    main()
