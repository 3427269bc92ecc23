"""Open a viewer page in headless Chromium (the system's, driven by Playwright), for the browser test and the
page benchmark. Neither is a dependency of the package: :func:`find_chromium` says what is missing.

WebGL runs on SwiftShader (software), so no GPU is needed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ARGS = (  # Playwright adds --headless itself
    "--no-sandbox",  # needed as root; the page is a local file
    "--use-gl=angle",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    # Without these it waits on connections that a machine without network refuses.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)


def find_chromium() -> tuple[str | None, str]:
    """(the Chromium executable, "") or (None, why not): ``$CHROMIUM``, else the first of ``CHROMIUM_NAMES``
    on the PATH; Playwright (pip package ``playwright``) must be importable."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return None, "the Python package playwright is not installed (pip install playwright)"
    executable = os.environ.get("CHROMIUM") or next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)
    if executable is None:
        return None, f"no Chromium found ({', '.join(CHROMIUM_NAMES)} or $CHROMIUM; Debian: apt-get install chromium)"
    return executable, ""


@dataclass
class OpenPage:
    page: Any  # playwright.sync_api.Page
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions, in order
    first_render_ms: float = float("nan")  # since navigation start, as the page measured it


@contextmanager
def open_page(
    path: str | Path, *, width: int = 1100, height: int = 700, timeout_s: float = 60, fragment: str = ""
) -> Iterator[OpenPage]:
    """Open a viewer page (with ``fragment``, e.g. ``#layer=segments``, after its address) and wait for its first
    frame; yields the page and what went wrong on it."""
    from playwright.sync_api import sync_playwright

    executable, reason = find_chromium()
    if executable is None:
        raise RuntimeError(reason)
    with tempfile.TemporaryDirectory(prefix="unscene3d-chromium-") as profile, sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            profile, executable_path=executable, args=list(CHROMIUM_ARGS), headless=True,
            viewport={"width": width, "height": height},
        )
        try:
            page = browser.pages[0] if browser.pages else browser.new_page()
            opened = OpenPage(page)
            page.on("console", lambda message: message.type == "error" and opened.errors.append(message.text))
            page.on("pageerror", lambda error: opened.errors.append(str(error)))
            page.goto(Path(path).resolve().as_uri() + fragment)
            page.wait_for_function("window.viewerFirstRenderMs !== undefined", timeout=timeout_s * 1000)
            opened.first_render_ms = float(page.evaluate("window.viewerFirstRenderMs"))
            yield opened
        finally:
            browser.close()
