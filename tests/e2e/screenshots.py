"""Screenshots of the staff dashboard for the README, from a live simulated store.

    python -m tests.e2e.screenshots [--out docs]

Runs the whole store in this process (embedded broker, gateway, API, simulator),
plays a few minutes' worth of store life quickly (shoppers, a lane emptied below
its threshold, a fridge whose compressor failed, two shoppers at one shelf), and
photographs the dashboard in headless Chromium (Debian's ``chromium``).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from tests.e2e.live import LiveStore, find_chromium, live_store

#: (file, CSS selector of what to photograph; None: the whole page)
SHOTS: tuple[tuple[str, str | None], ...] = (
    ("dashboard.png", None),
    ("dashboard-map.png", 'section[aria-labelledby="h-map"]'),
    ("dashboard-alerts.png", 'section[aria-labelledby="h-alerts"]'),
    ("dashboard-review.png", 'section[aria-labelledby="h-review"]'),
    ("dashboard-trace.png", 'section[aria-labelledby="h-trace"]'),
    ("dashboard-coldchain.png", 'section[aria-labelledby="h-coldchain"]'),
)


def _wait(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.1)


def play(store: LiveStore) -> None:
    """Some store life: receipts, a low lane, a warm fridge, a review item, carts."""
    sim = store.sim
    for index in range(3):
        sim.run_shopper(index)
    sim.run_script("shopper-rice", [("pick", "shelf-2", 1, 3), ("pick", "shelf-2", 1, 3)])
    sim.run_script("shopper-choc", [("pick", "shelf-1", 2, 5), ("pick", "shelf-1", 2, 5)])
    sim.run_script("shopper-more", [("pick", "shelf-1", 2, 5), ("pick", "shelf-3", 1, 2)])
    fridge = sim.fridges["fridge-1"]
    fridge.fail_compressor()
    fridge.set_temperature(9.4)  # it has been warming for a while
    _wait(lambda: store.read(lambda s: s.alerts(kind="restock")), "the restock alerts")
    choc = [a for a in store.read(lambda s: s.alerts(kind="restock")) if a["plate"] == 2]
    if choc:
        store.gateway.ack_alert(choc[0]["alert_id"], "ann")
    # Two shoppers in the store and no cameras: who took the crisps?
    sim.entry_gate.pass_through("shopper-ann")
    _wait(lambda: store.read(lambda s: s.session("shopper-ann")), "ann in the store")
    sim.shelves["shelf-1"].change(1, -350.0, 0.4)  # a cola for ann, alone in the store
    _wait(lambda: store.read(lambda s: s.cart("shopper-ann")), "the cola in ann's cart")
    sim.entry_gate.pass_through("shopper-bob")
    _wait(lambda: store.read(lambda s: s.session("shopper-bob")), "bob in the store")
    sim.shelves["shelf-2"].change(2, -190.0, 0.5)
    _wait(lambda: store.read(lambda s: s.reviews(status="open")), "the review item")
    _wait(lambda: store.read(lambda s: s.alerts(kind="cold_chain")), "the cold-chain alert", 60)


def shoot(url: str, token: str, out: Path, chromium: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
        page.goto(url + "/")
        page.fill("#token", token)
        page.click("#login button[type=submit]")
        page.wait_for_selector("#live.on")
        page.wait_for_selector('li.alert[data-kind="cold_chain"]')
        page.wait_for_selector("form.review")
        page.select_option("[data-trace-shelf]", "shelf-1")
        page.wait_for_selector('svg.trace[data-trace="shelf-1"]')
        page.mouse.move(0, 0)
        # On purpose: a settle for the last panel redraws, which leave nothing to wait for.
        time.sleep(1.5)
        for name, selector in SHOTS:
            path = out / name
            if selector is None:
                page.screenshot(path=str(path), full_page=True)
            else:
                page.locator(selector).screenshot(path=str(path))
            written.append(path)
        browser.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()
    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("chromium is not installed (apt-get install -y chromium)")
    logging.basicConfig(level=logging.WARNING)
    with (
        tempfile.TemporaryDirectory(prefix="storeedge-shots-") as tmp,
        live_store(Path(tmp), "demo-store", COLD_CHAIN__AFTER_S="4") as store,
    ):
        play(store)
        for path in shoot(store.url, store.token, args.out, chromium):
            print(path)


if __name__ == "__main__":
    main()
