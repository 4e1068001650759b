"""How the package keys and writes what it stores: one content hash, one atomic file write.

``json_hash`` identifies a JSON-able value (a prompt, a suite's settings, a recipe, a pipeline step's
parameters) by the SHA-256 of its canonical JSON: keys sorted, so equal content always hashes equally, and
text as UTF-8. Hashes stored before this canonical form escaped non-ASCII characters; ``json_hash_forms``
gives both, so run, pipeline and training folders written then still resume.

``write_atomic`` writes a whole file or nothing: a temporary file in the same folder, flushed to disk,
then renamed over the target. A crash (or a reader at the same moment) sees the old file or the new one,
never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import stat
from pathlib import Path


def _hash_json(value, ensure_ascii: bool, length: int) -> str:
    # default=str: a Path or a datetime hashes as its text instead of failing
    text = json.dumps(value, sort_keys=True, ensure_ascii=ensure_ascii, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def json_hash(value, length: int = 16) -> str:
    """The first ``length`` hex digits of the SHA-256 of ``value``'s canonical JSON (sorted keys, UTF-8)."""
    return _hash_json(value, ensure_ascii=False, length=length)


def json_hash_forms(value, length: int = 16) -> tuple[str, str]:
    """``json_hash(value)`` and the form hashes stored by earlier versions had (non-ASCII escaped as
    ``\\uXXXX``): compare a stored hash against both. They differ only when ``value`` holds non-ASCII text."""
    return json_hash(value, length), _hash_json(value, ensure_ascii=True, length=length)


def write_atomic(path: str | Path, text: str, mode: int | None = None) -> None:
    """Replace ``path`` with ``text`` (UTF-8) all at once. ``mode`` sets the file's permissions; without
    it, a replaced file keeps its own and a new one gets the usual ones (the umask applies).

    Raises:
        OSError: the folder is not writable (the old file, if any, is untouched).
    """
    path = Path(path)
    if mode is None and path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")  # a name of its own per writer
    # created like any new file (the umask applies), unlike mkstemp's 0600; never over an existing one
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())  # the data is on disk before the rename makes it the file
        if mode is not None:
            os.chmod(tmp, mode)  # exactly ``mode``, whatever the umask
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json_atomic(path: str | Path, data) -> None:
    """``write_atomic`` of ``data`` as indented UTF-8 JSON, in the key order it has."""
    write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
