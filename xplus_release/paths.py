"""Where the package keeps what it generates or downloads (tiny model, managed environments, caches)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$XPLUS_CACHE``, else ``$XDG_CACHE_HOME/xplus-release``, else ``~/.cache/xplus-release``."""
    if os.environ.get("XPLUS_CACHE"):
        return Path(os.environ["XPLUS_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser()
    return base / "xplus-release"
