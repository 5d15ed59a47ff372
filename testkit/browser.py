"""Headless Debian chromium driven by Playwright, for the tests that look at pages (docs/platform.md:
never `playwright install`; these flags work as root)."""
from __future__ import annotations

import contextlib
import shutil

from stack import prerequisites

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextlib.contextmanager
def chromium_page(width: int = 1600, height: int = 1200):
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise RuntimeError(prerequisites.advice("make test", [prerequisites.REQUIREMENTS["chromium"]]))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()
