"""Browser tests of the dashboard in real headless Chromium (Debian's ``chromium``).

They skip, saying why, where chromium or the ``playwright`` package is missing
(``apt-get install -y chromium``; ``pip install -e '.[dev]'``); Playwright is
pointed at that binary, it downloads no browser of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.live import LiveStore, find_chromium, live_store


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: drives the dashboard in headless Chromium")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip(
            "chromium is not installed: the dashboard's browser tests need Debian's "
            "chromium (apt-get install -y chromium) or STOREEDGE_CHROMIUM=/path/to/it"
        )
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is missing: pip install -e '.[dev]'"
    )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox"]
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def store(mosquitto, unique_store_id, tmp_path) -> Iterator[LiveStore]:
    with live_store(tmp_path, unique_store_id, mosquitto.url) as live:
        yield live


@pytest.fixture
def page(browser, store) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(store.url + "/")
    page.fill("#token", store.token)
    page.click("#login button[type=submit]")
    page.wait_for_selector("#live.on")
    try:
        yield page
    finally:
        context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
