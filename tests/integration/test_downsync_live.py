"""Down-sync live: HQ publishes a price list and a configuration; a running gateway
(real Mosquitto, real HQ over HTTP) fetches them, the shelf label shows the new
price, and HQ's fleet view shows the versions the store runs."""

from __future__ import annotations

import httpx

from cloud_sync.hq.server import HqServer
from devices.layout import load_planogram
from edge.config import EslConfig
from firmware_sim.esl import SimEsl
from tests.cloud_sync.helpers import ADMIN, add_store
from tests.integration.conftest import gateway_config, started_gateway, wait_for


def test_prices_and_config_from_hq_reach_a_running_store(mosquitto, unique_store_id, tmp_path):
    hq = HqServer(tmp_path / "hq.db", admin_token=ADMIN).start()
    admin = httpx.Client(base_url=hq.url, headers={"Authorization": f"Bearer {ADMIN}"})
    cfg = gateway_config(unique_store_id, mosquitto.url, tmp_path / "gateway.db")
    water = load_planogram(cfg.planogram).shelf("shelf-1").plates[0].barcode
    key = add_store(hq.db, unique_store_id)
    hq_cfg = cfg.hq.model_copy(
        update={
            "url": hq.url,
            "api_key": key,
            "sync_poll_s": 0.2,
            "heartbeat_s": 0.2,
            "config_probation_s": 0.5,
        }
    )
    cfg = cfg.model_copy(
        update={"esls": [EslConfig(device_id="esl-water", barcode=water)], "hq": hq_cfg}
    )
    label = SimEsl(cfg.store_id, "esl-water", mosquitto.host, mosquitto.port)
    try:
        with started_gateway(cfg) as running:
            gw = running.gateway
            try:
                label.start(timeout=5)
                old = gw.planogram.product(water).price_minor
                wait_for(
                    lambda: label.display.price_minor == old, what="the label showing the price"
                )

                prices = admin.post(
                    "/api/v1/sync/prices",
                    json={"store_id": unique_store_id, "body": {"prices": {water: old + 40}}},
                )
                assert prices.status_code == 201, prices.text
                wait_for(
                    lambda: label.display.price_minor == old + 40, what="HQ's price on the label"
                )
                config = admin.post(
                    "/api/v1/sync/config", json={"body": {"inference": {"min_confidence": 0.65}}}
                )
                assert config.status_code == 201, config.text
                wait_for(
                    lambda: gw.config.inference.min_confidence == 0.65,
                    what="the configuration applied",
                )

                def synced() -> dict:
                    [store] = admin.get("/api/v1/fleet").json()["stores"]
                    return store

                # The running versions come with the heartbeat, the outcomes through the outbox:
                # either may arrive first.
                wait_for(
                    lambda: (
                        synced()["sync"].get("config", {}).get("running") == 1
                        and synced()["sync"]["prices"]["running"] == 1
                        and synced()["sync"]["config"].get("status") is not None
                        and synced()["sync"]["prices"].get("status") is not None
                    ),
                    what="HQ's fleet view showing the versions the store runs and their outcomes",
                )
                store = synced()
                assert store["versions"]["prices"] == "1"
                assert store["sync"]["prices"]["status"] == "applied"
                assert store["sync"]["config"]["status"] == "applied"
                assert store["health"] == "ok", store["health_reason"]
            finally:
                label.stop()
    finally:
        admin.close()
        hq.stop()
