"""Real headless Chromium (Debian's /usr/bin/chromium) driven by playwright, for the page tests.

Never `playwright install`: the browser is the Debian package. Without it a test skips locally and
FAILS under CI=true."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .services import service_unavailable as unavailable

CHROMIUM = Path(os.environ.get("CUSTODES_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install playwright; do not run `playwright install`)")
    if not CHROMIUM.exists():
        unavailable(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()
