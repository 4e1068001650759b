"""Regenerate ``docs/view.png``, the screenshot of ``xplus-eval view`` in the docs and the README.

    .venv/bin/python scripts/view_screenshot.py     # a few minutes on a CPU

It needs Debian's ``chromium`` and a font with Chinese characters (``apt-get install fonts-wqy-microhei``).

Two translation runs of ``xplus-tiny`` (8 and 24 new tokens, 5 sentences of en, zh, sw) are written by
``xplus-eval translation`` under ``runs/`` of a temporary folder, so the page shows the neutral paths
``runs/tiny-8-tokens`` and ``runs/tiny-24-tokens``; the app opens on the Translation tab (the difference
heatmap of the two runs) and the en-zh direction page, and headless Chromium takes the picture, which is
cropped below the segments table and stored with a 256-colour palette to keep the repository small.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "view.png"
RUNS = {"runs/tiny-8-tokens": 8, "runs/tiny-24-tokens": 24}
WINDOW = (1280, 2400)
WIDTH = 1000  # of the stored image


def translate(cwd: Path, output: str, max_tokens: int) -> None:
    command = [sys.executable, "-m", "xplus_release.evalsuite.cli", "translation", "--model", "xplus-tiny",
               "--langs", "en,zh,sw", "--limit", "5", "--max-tokens", str(max_tokens), "--output", output,
               "--no-progress"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", VLLM_CPU_KVCACHE_SPACE=os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"))
    subprocess.run(command, cwd=cwd, env=env, check=True)


def screenshot(cwd: Path, shot: Path) -> None:
    from xplus_release.engines.server import free_port
    from xplus_release.evalsuite.view.app import build_view

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        sys.exit("error: chromium is not installed: apt-get install -y chromium")
    os.chdir(cwd)  # the page shows the paths as given: relative ones
    os.environ["HF_HUB_OFFLINE"] = "1"  # no spBLEU download attempt: without its model the page leaves it out
    blocks = build_view(list(RUNS), selected="Translation", direction="en-zh")
    port = free_port()
    blocks.launch(server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with tempfile.TemporaryDirectory() as profile:
            subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                            "--disable-background-networking", f"--user-data-dir={profile}",
                            f"--window-size={WINDOW[0]},{WINDOW[1]}", "--virtual-time-budget=30000",
                            f"--screenshot={shot}", f"http://127.0.0.1:{port}/"], check=True, capture_output=True)
    finally:
        blocks.close()


def store(shot: Path) -> None:
    """Crop below the segments table (its last dark border line), scale to WIDTH, keep a 256-colour palette."""
    from PIL import Image

    image = Image.open(shot).convert("RGB")
    gray = image.convert("L")
    width, height = gray.size
    pixels = gray.load()
    borders = [y for y in range(height) if sum(pixels[x, y] < 100 for x in range(0, width, 4)) > width // 8]
    bottom = min(height, borders[-1] + 16) if borders else height
    image = image.crop((0, 0, width, bottom))
    image = image.resize((WIDTH, round(image.height * WIDTH / image.width)), Image.LANCZOS)
    image.quantize(colors=256).save(TARGET, optimize=True)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        for output, max_tokens in RUNS.items():
            translate(cwd, output, max_tokens)
        screenshot(cwd, cwd / "view.png")
        store(cwd / "view.png")
    print(f"wrote {TARGET.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
