"""Headless Chromium driven by Selenium, for tests/test_report.py and tools/report_screenshots.py.

Debian's ``chromium`` and ``chromium-driver`` packages (``.ci/run`` installs them with
``fonts-dejavu-core``), or the CHROMIUM and CHROMEDRIVER environment variables pointing at a
Chrome or Chromium and its matching chromedriver; and ``selenium`` (requirements-lock.txt).
Selenium is given the driver's path, so it never downloads one.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--mute-audio",
    "--autoplay-policy=no-user-gesture-required",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--no-first-run",
    "--disable-extensions",
    "--disable-background-networking",
    "--lang=en-US",
)


def executables() -> tuple[str | None, str | None]:
    """The paths of Chromium and of chromedriver (None where not found)."""
    browser = os.environ.get("CHROMIUM") or next(filter(None, map(shutil.which, BROWSERS)), None)
    return browser, os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")


def browser_missing() -> str | None:
    """Why no browser can be driven here, or None when Chromium, chromedriver and selenium are all there."""
    browser, driver = executables()
    if not browser or not os.access(browser, os.X_OK):
        return "no Chromium found (apt-get install chromium, or set CHROMIUM)"
    if not driver or not os.access(driver, os.X_OK):
        return "no chromedriver found (apt-get install chromium-driver, or set CHROMEDRIVER)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (make venv installs requirements-lock.txt)"
    return None


@contextlib.contextmanager
def open_browser(width: int = 1200, height: int = 1400) -> Iterator:
    """A headless Chromium window of ``width`` x ``height`` CSS pixels, quit on exit.

    Yields
    ------
    selenium.webdriver.Chrome
        Its browser log (``driver.get_log("browser")``) holds the pages' JavaScript errors.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, chromedriver = executables()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (*FLAGS, f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()


def wait_for(driver, expression: str, timeout: float = 10.0, what: str = ""):
    """Poll a JavaScript expression until it is truthy; return its value.

    Raises
    ------
    AssertionError
        When it is still falsy after ``timeout`` seconds.
    """
    end = time.monotonic() + timeout
    while True:
        value = driver.execute_script("return " + expression)
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or expression}")
        time.sleep(0.05)


def open_page(driver, page: Path, width: int | None = None) -> None:
    """Open ``page`` from its ``file://`` URL, at ``width`` CSS pixels if given, and wait for its fonts."""
    if width:
        driver.set_window_size(width, driver.get_window_size()["height"])
    driver.get(Path(page).resolve().as_uri())
    wait_for(driver, "document.readyState === 'complete' && document.fonts.status === 'loaded'", what="the page")


def screenshot(driver, path: Path | None = None, height: int | None = None) -> bytes:
    """A PNG of the window (``height`` CSS pixels of the page if given), also written to ``path``."""
    if height:  # the window's size is the viewport's plus the browser's frame
        frame = driver.execute_script("return window.outerHeight - window.innerHeight")
        driver.set_window_size(driver.get_window_size()["width"], height + frame)
        wait_for(driver, f"window.innerHeight === {height}", what="the window's new size")
    png = driver.get_screenshot_as_png()
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(png)
    return png


def distinct_colours(png: bytes) -> int:
    """How many different colours a PNG holds: 1 for a blank screenshot."""
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3).astype(np.uint32)
    return len(np.unique(pixels[:, 0] << 16 | pixels[:, 1] << 8 | pixels[:, 2]))


def javascript_errors(driver) -> list[dict]:
    """The errors the browser logged since the last call (a missing audio file's load error left out)."""
    return [
        entry
        for entry in driver.get_log("browser")
        if entry.get("level") == "SEVERE"
        and "favicon" not in entry["message"]
        and "ERR_FILE_NOT_FOUND" not in entry["message"]
    ]
