"""Downloads OpenCompass's own data archives with OpenCompass's own downloader (runs in its managed env).

Input rows: ``{"path": "data/mbpp/mbpp.jsonl"}`` relative to ``$COMPASS_DATA_CACHE``. Output rows:
``{"path": ..., "ok": bool, "error": str | None}``; one failed archive does not stop the others.
"""

import os

from jsonl_worker import run_jsonl_worker


def fetch(path: str, root: str) -> dict:
    from opencompass.utils.datasets import download_dataset

    if os.path.exists(os.path.join(root, path)):
        return {"path": path, "ok": True, "error": None}
    try:
        download_dataset("./" + path, root)
    except Exception as err:  # noqa: BLE001 - reported per archive; the caller turns failures into one error
        return {"path": path, "ok": False, "error": f"{type(err).__name__}: {err}"}
    return {"path": path, "ok": os.path.exists(os.path.join(root, path)), "error": None}


def handle(rows: list[dict], _args) -> list[dict]:
    return [fetch(row["path"], os.environ["COMPASS_DATA_CACHE"]) for row in rows]


if __name__ == "__main__":
    run_jsonl_worker(handle, __doc__)
