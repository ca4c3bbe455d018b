"""A real-browser check of the built documentation site, in headless Chromium.

Run by ``.ci/run`` after the Sphinx build (not collected by pytest)::

    python tests/browser/check_site.py docs/_build/html

It serves the site with ``http.server`` on 127.0.0.1 and drives Debian's ``chromium``
through ``chromedriver`` with selenium (Selenium Manager is never asked to download a
browser: the paths are given). It checks that the quickstart, the API reference and a guide
page render (a known heading is visible), that the search page finds ``Retry``, and that no
page logs a console error; it saves a screenshot of the quickstart to
``<site>/../screenshots/quickstart.png``. Exits 1 with the failures listed.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
#: page -> a heading that must be visible on it.
PAGES = {
    "quickstart.html": "Quickstart",
    "reference.html": "API reference",
    "index.html": "restwell guide",
    "migrate-httpx.html": "Migrating from httpx",
}
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1000",
)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve(root: Path) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 (an OS-chosen port) in a thread; yield the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def browser() -> Iterator[Any]:
    """A headless Chromium driven by chromedriver, with a fresh profile."""
    from selenium import webdriver  # noqa: PLC0415 - only this script needs selenium
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="restwell-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        try:
            driver.set_page_load_timeout(30)
            yield driver
        finally:
            driver.quit()


def console_errors(driver: Any) -> list[str]:
    """The SEVERE entries of the browser console since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def check(site: Path, screenshot: Path) -> list[str]:
    """Run every check on the site built in ``site``; return the failures."""
    from selenium.common.exceptions import TimeoutException  # noqa: PLC0415
    from selenium.webdriver.common.by import By  # noqa: PLC0415
    from selenium.webdriver.support import expected_conditions  # noqa: PLC0415
    from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

    failures = []
    with serve(site) as base, browser() as driver:
        for page, heading in PAGES.items():
            driver.get(f"{base}/{page}")
            headings = [element.text for element in driver.find_elements(By.CSS_SELECTOR, "h1")]
            if not any(heading in text for text in headings if text):
                failures.append(f"{page}: no visible heading {heading!r} (h1: {headings})")
            failures += [f"{page}: console error: {message}" for message in console_errors(driver)]
            print(f"checked {page}: {driver.title!r}")
            if page == "quickstart.html":
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(screenshot))
                print(f"screenshot: {screenshot}")

        # The search: type into the search box of a page, as a reader would.
        driver.get(f"{base}/quickstart.html")
        box = driver.find_element(By.CSS_SELECTOR, "input[name='q']")
        box.send_keys("Retry")
        box.submit()
        try:
            WebDriverWait(driver, 20).until(
                expected_conditions.presence_of_element_located(
                    (By.CSS_SELECTOR, "#search-results ul.search li")
                )
            )
        except TimeoutException:
            status = driver.find_elements(By.CSS_SELECTOR, "#search-results")
            failures.append(
                f"search for 'Retry' found nothing: {status[0].text if status else 'no results'}"
            )
        else:
            results = driver.find_elements(By.CSS_SELECTOR, "#search-results ul.search li")
            titles = [result.text.splitlines()[0] for result in results[:5] if result.text]
            print(f"search 'Retry': {len(results)} results, first: {titles}")
            if not any("Retry" in result.text for result in results):
                failures.append("search for 'Retry': no result mentions Retry")
        failures += [f"search.html: console error: {message}" for message in console_errors(driver)]
    return failures


def main(argv: list[str]) -> int:
    """Check the site in ``argv[1]`` (default ``docs/_build/html``)."""
    site = Path(argv[1] if len(argv) > 1 else "docs/_build/html").resolve()
    if not (site / "quickstart.html").exists():
        print(f"no built site in {site}: run sphinx-build first")
        return 1
    screenshot = site.parent / "screenshots" / "quickstart.png"
    failures = check(site, screenshot)
    for failure in failures:
        print(f"FAILED: {failure}")
    print(f"browser check: {len(PAGES)} pages and the search, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
