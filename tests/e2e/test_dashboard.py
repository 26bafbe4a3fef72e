"""The staff dashboard in headless Chromium against a live simulated store.

* A shopper empties the rice lane below its threshold: the restock alert shows up
  on the page (and on the MQTT alert topic), a click acknowledges it, and staff
  refilling the lane resolves it.
* Two shoppers at one shelf and no cameras: the pick goes to the review queue;
  staff resolve it on the page for one of them, after both have left, and that
  shopper's receipt changes (an extra charge).
"""

from __future__ import annotations

import json
import queue
import re
import threading

import paho.mqtt.client as mqtt
from playwright.sync_api import expect

from devices.protocol import alert_topic
from tests.integration.conftest import wait_for

RICE = "4311501490000"  # shelf-2 plate 1: 8 units, alert at 2 or fewer


def _subscribe(host: str, port: int, topic: str) -> tuple[mqtt.Client, queue.Queue]:
    """A client on ``topic`` whose subscription is confirmed on return."""
    got: queue.Queue = queue.Queue()
    subscribed = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda _c, _u, msg: got.put(json.loads(msg.payload))
    client.on_subscribe = lambda *_args: subscribed.set()
    client.connect(host, port)
    client.loop_start()
    client.subscribe(topic, qos=1)
    assert subscribed.wait(10), f"no SUBACK for {topic}"
    return client, got


def test_restock_alert_is_shown_acknowledged_and_resolved_by_a_refill(page, store, mosquitto):
    watcher, published = _subscribe(
        mosquitto.host, mosquitto.port, alert_topic(store.gateway.config.store_id, "restock")
    )
    try:
        expect(page.locator('[data-panel="map"] g.shelf[data-shelf="shelf-2"]')).to_be_visible()
        store.sim.run_script("e2e-rice", [("pick", "shelf-2", 1, 3), ("pick", "shelf-2", 1, 3)])

        alert = page.locator('li.alert[data-kind="restock"][data-state="open"]')
        expect(alert).to_have_count(1)
        expect(alert).to_contain_text("Rice 1 kg")
        expect(alert).to_contain_text("2 left")
        rice_lane = 'g.shelf[data-shelf="shelf-2"] g.lane.{}[data-plate="1"]'
        expect(page.locator(rice_lane.format("low"))).to_be_visible()

        alert.locator("button.ack").click()
        expect(page.locator('li.alert[data-kind="restock"][data-state="acked"]')).to_have_count(1)
        expect(page.locator("#toast")).to_contain_text("acknowledged")
        (row,) = store.read(lambda s: s.alerts(kind="restock"))
        assert row["state"] == "acked"

        store.sim.restock("shelf-2", 1, 6)  # staff refill the lane: 8 again
        resolved = page.locator('ul.alerts.resolved li[data-kind="restock"]')
        expect(resolved).to_have_count(1)
        expect(resolved).to_contain_text("Rice 1 kg")
        expect(page.locator('ul.alerts:not(.resolved) li[data-kind="restock"]')).to_have_count(0)
        expect(page.locator(rice_lane.format("ok"))).to_be_visible()

        states = []
        while len(states) < 3:
            states.append(published.get(timeout=10)["state"])
        assert states == ["open", "acked", "resolved"]
    finally:
        watcher.loop_stop()
        watcher.disconnect()


def test_a_review_item_resolved_on_the_page_changes_the_receipt(page, store):
    sim = store.sim
    sim.entry_gate.pass_through("e2e-ann")
    sim.entry_gate.pass_through("e2e-bob")
    wait_for(lambda: len(store.read(lambda s: s.sessions(state="open"))) == 2, what="two shoppers")
    sim.shelves["shelf-1"].change(0, -535.0, 0.4)  # one of them takes a sparkling water
    wait_for(lambda: store.read(lambda s: s.reviews(status="open")), what="the review item")
    sim.exit_gate.pass_through("e2e-ann")
    sim.exit_gate.pass_through("e2e-bob")
    wait_for(lambda: len(store.read(lambda s: s.receipts(limit=5))) == 2, what="both receipts")

    ann = page.locator('[data-panel="receipts"] li[data-session="e2e-ann"]')
    expect(ann.locator(".total")).to_have_text("0.00 EUR")
    form = page.locator("form.review")
    expect(form).to_have_count(1)
    expect(form).to_contain_text("several shoppers in the store")
    expect(form.locator("select[name=barcode] option").first).to_contain_text("Sparkling water")
    form.locator("select[name=session_token]").select_option("e2e-ann")
    form.locator("button[value=resolve]").click()

    expect(page.locator("form.review")).to_have_count(0)
    expect(ann.locator(".total")).to_have_text("1.19 EUR")
    expect(ann.locator("li.adjustment")).to_contain_text(re.compile(r"extra: 1 \S Sparkling water"))
    bob = page.locator('[data-panel="receipts"] li[data-session="e2e-bob"]')
    expect(bob.locator(".total")).to_have_text("0.00 EUR")
    (receipt,) = store.read(lambda s: s.receipts(token="e2e-ann"))
    assert receipt["adjusted_total_minor"] == 119


def test_the_page_asks_for_the_token_and_refuses_a_wrong_one(browser, store):
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(store.url + "/")
        expect(page.locator("#login")).to_be_visible()
        expect(page.locator("#board")).to_be_hidden()
        page.fill("#token", "wrong")
        page.click("#login button[type=submit]")
        expect(page.locator("#login-error")).to_contain_text("not accepted")
        expect(page.locator("#board")).to_be_hidden()
        page.fill("#token", store.token)
        page.click("#login button[type=submit]")
        expect(page.locator("#board")).to_be_visible()
        expect(page.locator("#live")).to_have_text("live")
        expect(page.locator('[data-panel="devices"] tr[data-device="fridge-1"]')).to_be_visible()
        expect(page.locator('[data-panel="coldchain"] li[data-unit="fridge-1"]')).to_contain_text(
            "dairy fridge"
        )
        page.click("#logout")
        expect(page.locator("#login")).to_be_visible()
    finally:
        context.close()
