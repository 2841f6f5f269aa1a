"""Make the README's screenshots of the HTML reports: docs/report-track.png and docs/report-index.png.

Runs the real analyzer with ``--html`` on the demo's song and, with ``--evaluate``, on the demo's
corpus (``make demo`` first), then opens the pages in headless Chromium with the tests' browser
tooling (tests/browser.py) and saves the screenshots, reduced to 256 colours:

    .venv/bin/python tools/report_screenshots.py

The pages go to demo_output/report/.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # run from anywhere without installing

from genrekit.core import cli  # noqa: E402
from genrekit.core.errors import GenrekitError  # noqa: E402
from tests.browser import browser_missing, open_browser, open_page, screenshot, wait_for  # noqa: E402
from tests.helpers import run_script  # noqa: E402

DEMO = Path("demo_output")  # relative to the repository: the pages show these paths
SONG = DEMO / "demo_song.mp3"
CORPUS = DEMO / "corpus"
MODEL = DEMO / "output" / "models" / "demo"
CONFIG = Path("demo") / "pipeline_parameters.json"
PAGES = DEMO / "report"
WIDTH = 1100  # CSS pixels of the window
SEEK_TO = 100.0  # seconds: the playhead shown near the song's change of genre


def analyze(*args: object) -> None:
    """Run ``python -m track_analyzer`` on the demo model; raise with its error line if it fails."""
    proc = run_script("-m track_analyzer", *map(str, args), "--model", str(MODEL), "--config", str(CONFIG))
    if proc.returncode != 0:
        raise GenrekitError(f"track_analyzer failed: {proc.stderr.strip().splitlines()[-1:]}")


def save_png(png: bytes, path: Path) -> None:
    """Write ``png`` with at most 256 colours (a third of the size; text and flat colours stay sharp)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    image.save(path, optimize=True)
    cli.log(f"{path}: {image.width}x{image.height}, {path.stat().st_size // 1024} KB")


def main(argv=None) -> int:
    parser = cli.make_parser(__doc__)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs", help="where the PNGs go (default: docs/)")
    args = parser.parse_args(argv)
    missing = [path for path in (SONG, CORPUS, MODEL) if not (REPO_ROOT / path).exists()]
    if missing:
        raise GenrekitError(f"{missing[0]} not found: run make demo first")
    reason = browser_missing()
    if reason:
        raise GenrekitError(reason)
    from selenium.webdriver.common.by import By

    track, index = PAGES / "demo_song.html", PAGES / "corpus.html"
    analyze(SONG, "--html", track)
    analyze("--evaluate", CORPUS, "--html", index)
    with open_browser(WIDTH, 1000) as driver:
        open_page(driver, REPO_ROOT / track)
        wait_for(driver, "document.getElementById('audio').readyState >= 1", what="the song's metadata")
        driver.execute_script(f"trackPage.seek({SEEK_TO})")
        wait_for(driver, f"Math.abs(document.getElementById('audio').currentTime - {SEEK_TO}) < 0.5", what="seek")
        save_png(screenshot(driver, height=1090), args.out / "report-track.png")
        open_page(driver, REPO_ROOT / index)
        share = driver.find_element(By.CSS_SELECTOR, 'th[data-key="share"] button')
        share.click()
        share.click()  # the least certain verdicts first
        save_png(screenshot(driver, height=1250), args.out / "report-index.png")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
