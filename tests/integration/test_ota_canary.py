"""OTA against the real Mosquitto: gateway, API and simulated gates with A/B slots."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from fastapi.testclient import TestClient

from devices.ota import (
    CHUNK_BYTES,
    MAX_INLINE_IMAGE_BYTES,
    OTA_CHUNK,
    OTA_OFFER,
    OtaOffer,
    generate_private_key,
    make_chunk,
    make_offer,
    public_key_text,
    sign_image,
)
from devices.protocol import Command, OtaPhase, ota_topic
from edge.api.app import create_app
from edge.app import Gateway
from edge.config import GatewayConfig, OtaConfig
from edge.store.repo import Store
from firmware_sim.gate import SimGate
from firmware_sim.ota import MAX_ASKS, SimOta
from tests.integration.conftest import gateway_config, wait_for
from tests.wire import Wire

VENDOR = generate_private_key()
IMAGE = b"simulated gate firmware 2.0.0\n" * 64
#: Too large to travel inline: 10 chunks, the last one short.
BIG = (b"simulated gate firmware 3.0.0, with all its assets\n" * 12_000)[: 9 * CHUNK_BYTES + 777]
STAFF = {"Authorization": "Bearer s3cret"}
GATES: dict[str, Literal["entry", "exit"]] = {"gate-entry": "entry", "gate-exit": "exit"}


def _config(mosquitto, store_id: str, tmp_path) -> GatewayConfig:
    cfg = gateway_config(store_id, mosquitto.url, tmp_path / "gateway.db")
    ota = OtaConfig(
        trusted_public_key=public_key_text(VENDOR.public_key()),
        canary_share=0.5,
        health_window_s=2.5,
        boot_timeout_s=20,
        missed_heartbeats=6,
    )
    return cfg.model_copy(update={"ota": ota})


class Rig:
    def __init__(self, mosquitto, store_id: str, tmp_path) -> None:
        self.mosquitto = mosquitto
        self.store_id = store_id
        self.cfg = _config(mosquitto, store_id, tmp_path)
        self.gw = self.start_gateway()
        self.api = TestClient(
            create_app(
                self.cfg.database.path, store_id=store_id, actions=self.gw, staff_token="s3cret"
            )
        )
        self.gates: dict[str, SimGate] = {}

    def start_gateway(self) -> Gateway:
        gw = Gateway(self.cfg)
        gw.start()
        assert gw.link is not None
        assert gw.link.wait_connected(10), "gateway did not connect to mosquitto"
        return gw

    def restart_gateway(self) -> None:
        self.gw.stop()
        self.gw = self.start_gateway()
        self.api.app.state.ctx.actions = self.gw

    def gate(
        self, device_id: str, trusted=VENDOR, trial_timeout_s: float = 60, **ota: Any
    ) -> SimGate:
        gate = SimGate(
            self.store_id,
            device_id,
            self.mosquitto.host,
            self.mosquitto.port,
            GATES[device_id],
            firmware="1.0.0",
        )
        gate.settings["heartbeat_s"] = 0.5  # fast heartbeats, so a short health window
        gate.apply_settings()
        SimOta(gate, trusted.public_key(), trial_timeout_s=trial_timeout_s, **ota)
        gate.start(timeout=5)
        self.gates[device_id] = gate
        wait_for(lambda: self.gw.liveness.state(device_id) == "online", what=f"{device_id}")
        return gate

    def register(self, image: bytes = IMAGE, version: str = "2.0.0") -> None:
        body = {
            "manifest": sign_image(VENDOR, image, version, "gate").model_dump(mode="json"),
            "image_b64": base64.b64encode(image).decode(),
        }
        resp = self.api.post("/api/v1/ota/images", json=body, headers=STAFF)
        assert resp.status_code == 201, resp.text

    def rollout(self, **request: Any) -> str:
        body = {"device_type": "gate", "version": "2.0.0", **request}
        resp = self.api.post("/api/v1/ota/rollouts", json=body, headers=STAFF)
        assert resp.status_code == 201, resp.text
        return str(resp.json()["rollout_id"])

    def status(self, rollout_id: str) -> dict[str, Any]:
        resp = self.api.get(f"/api/v1/ota/rollouts/{rollout_id}", headers=STAFF)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def device_states(self, rollout_id: str) -> dict[str, str]:
        return {d["device_id"]: d["state"] for d in self.status(rollout_id)["devices"]}

    def offers(self, command: str = OTA_OFFER) -> list[str]:
        store = Store.open(self.cfg.database.path, readonly=True)
        try:
            return [
                e["device_id"]
                for e in store.events("command_sent")
                if e["body"]["command"] == command
            ]
        finally:
            store.close()

    def firmware(self, device_id: str) -> str | None:
        store = Store.open(self.cfg.database.path, readonly=True)
        try:
            rows = [d for d in store.devices() if d["device_id"] == device_id]
            return rows[0]["firmware"] if rows else None
        finally:
            store.close()

    def close(self) -> None:
        for gate in self.gates.values():
            if gate.ota is not None:
                gate.ota.close()
            gate.stop()
        self.gw.stop()


@pytest.fixture
def rig(mosquitto, unique_store_id, tmp_path) -> Iterator[Rig]:
    r = Rig(mosquitto, unique_store_id, tmp_path)
    try:
        yield r
    finally:
        r.close()


def test_a_canary_that_fails_health_rolls_back_and_the_rollout_stops(rig):
    canary = rig.gate("gate-entry", bad_versions={"2.0.0": "hang"})
    rig.gate("gate-exit")
    rig.register()
    rollout_id = rig.rollout(canary=["gate-entry"])

    wait_for(
        lambda: rig.device_states(rollout_id)["gate-entry"] == "rolled_back",
        timeout=40,
        what="the canary to roll back",
    )
    status = rig.status(rollout_id)
    assert status["state"] == "halted"
    assert status["reason"].startswith("canary device gate-entry failed its health check")
    assert "no heartbeat" in status["reason"]
    [entry, exit_] = status["devices"]
    assert (entry["device_id"], entry["wave"], entry["from_version"]) == (
        "gate-entry",
        "canary",
        "1.0.0",
    )
    assert "no heartbeat" in entry["detail"]
    assert (exit_["device_id"], exit_["state"]) == ("gate-exit", "pending")
    listed = rig.api.get("/api/v1/ota/rollouts", headers=STAFF).json()["items"]
    assert listed[0]["reason"] == status["reason"]

    # The canary is back on its old slot, running the old firmware; the rest never saw it.
    assert canary.ota is not None
    assert (canary.ota.active, canary.firmware, canary.ota.on_trial) == ("A", "1.0.0", False)
    wait_for(lambda: rig.firmware("gate-entry") == "1.0.0", what="the old version reported")
    assert rig.offers() == ["gate-entry"]
    assert rig.firmware("gate-exit") == "1.0.0"


def test_a_healthy_rollout_reaches_every_device_and_survives_a_gateway_restart(rig):
    canary = rig.gate("gate-entry")
    other = rig.gate("gate-exit")
    rig.register()
    rollout_id = rig.rollout(canary=["gate-entry"])
    wait_for(
        lambda: rig.device_states(rollout_id)["gate-entry"] == "verifying",
        timeout=20,
        what="the canary's health window",
    )
    rig.restart_gateway()  # progress is in SQLite; the health check goes on
    wait_for(lambda: rig.status(rollout_id)["state"] == "done", timeout=60, what="done")
    assert rig.device_states(rollout_id) == {"gate-entry": "confirmed", "gate-exit": "confirmed"}
    assert rig.offers() == ["gate-entry", "gate-exit"]
    for gate in (canary, other):
        assert gate.ota is not None
        assert (gate.ota.active, gate.firmware, gate.ota.on_trial) == ("B", "2.0.0", False)
        assert gate.ota.slots == {"A": "1.0.0", "B": "2.0.0"}
    wait_for(lambda: rig.firmware("gate-exit") == "2.0.0", what="the new version reported")


def test_a_device_refuses_an_image_its_own_key_does_not_verify(rig):
    rig.gate("gate-entry", trusted=generate_private_key())  # trusts another vendor key
    rig.register()
    rollout_id = rig.rollout()
    wait_for(lambda: rig.status(rollout_id)["state"] == "halted", timeout=20, what="halt")
    status = rig.status(rollout_id)
    assert rig.device_states(rollout_id) == {"gate-entry": "failed"}
    assert "could not install 2.0.0" in status["reason"]
    assert "does not verify against the trusted public key" in status["reason"]
    gate = rig.gates["gate-entry"]
    assert gate.ota is not None
    assert (gate.ota.active, gate.firmware, gate.ota.slots["B"]) == ("A", "1.0.0", None)


def test_a_firmware_that_does_not_boot_is_rolled_back_by_the_device_itself(rig):
    rig.gate("gate-entry", bad_versions={"2.0.0": "crash"})
    rig.register()
    rollout_id = rig.rollout()
    wait_for(lambda: rig.status(rollout_id)["state"] == "halted", timeout=20, what="halt")
    status = rig.status(rollout_id)
    assert rig.device_states(rollout_id) == {"gate-entry": "rolled_back"}
    assert status["reason"] == (
        "canary device gate-entry rolled back: rolled_back (slot A): slot B did not boot"
    )


def test_a_device_not_confirmed_within_its_trial_goes_back_by_itself(rig):
    rig.gw.stop()  # a gateway with a health window longer than the device's trial
    rig.cfg = rig.cfg.model_copy(
        update={"ota": rig.cfg.ota.model_copy(update={"health_window_s": 60})}
    )
    rig.gw = rig.start_gateway()
    rig.api.app.state.ctx.actions = rig.gw
    gate = rig.gate("gate-entry", trial_timeout_s=2)
    rig.register()
    rollout_id = rig.rollout()
    wait_for(
        lambda: "not confirmed within 2 s" in rig.status(rollout_id)["devices"][0]["detail"],
        timeout=30,
        what="the device's own rollback",
    )
    assert rig.device_states(rollout_id) == {"gate-entry": "rolled_back"}
    assert rig.status(rollout_id)["state"] == "halted"
    assert gate.ota is not None
    assert (gate.ota.active, gate.firmware) == ("A", "1.0.0")


def test_an_image_too_large_to_send_inline_is_pulled_in_chunks(rig):
    assert len(BIG) > MAX_INLINE_IMAGE_BYTES
    gate = rig.gate("gate-entry")
    rig.register(BIG, "3.0.0")
    rollout_id = rig.rollout(version="3.0.0")
    wait_for(lambda: rig.status(rollout_id)["state"] == "done", timeout=60, what="done")
    assert rig.device_states(rollout_id) == {"gate-entry": "confirmed"}
    assert gate.ota is not None
    assert (gate.ota.active, gate.firmware, gate.ota.slots["B"]) == ("B", "3.0.0", "3.0.0")
    assert rig.offers() == ["gate-entry"]
    assert rig.offers(OTA_CHUNK) == ["gate-entry"] * 10


def _command(args: dict[str, Any] | None) -> Command:
    assert args is not None
    return Command(cmd_id="c-1", ts=1, args=args)


def test_a_device_asks_again_past_duplicates_and_refuses_a_forged_chunk(rig):
    gate = rig.gate("gate-entry")
    assert gate.ota is not None
    manifest = sign_image(VENDOR, BIG, "3.0.0", "gate")
    args = make_offer(manifest, BIG)
    offer = OtaOffer.model_validate(args)
    assert gate.ota.handle_command(OTA_OFFER, _command(args)) == (True, "downloading 10 chunks")

    def chunk(i: int) -> Command:
        return _command(make_chunk(offer, BIG, i))

    assert gate.ota.handle_command(OTA_CHUNK, chunk(0)) == (True, "chunk 1 of 10")
    assert gate.ota.handle_command(OTA_CHUNK, chunk(0)) == (True, "chunk 0 ignored; asked for 1")
    assert gate.ota.handle_command(OTA_CHUNK, chunk(2)) == (True, "chunk 2 ignored; asked for 1")
    for i in range(1, 9):
        assert gate.ota.handle_command(OTA_CHUNK, chunk(i))[0]
    forged = make_chunk(offer, b"x" * len(BIG), 9)  # the right length, the wrong bytes
    ok, detail = gate.ota.handle_command(OTA_CHUNK, _command(forged))
    assert not ok
    assert "SHA-256" in detail
    assert (gate.ota.active, gate.ota.slots["B"], gate.firmware) == ("A", None, "1.0.0")
    ok, detail = gate.ota.handle_command(OTA_CHUNK, chunk(9))
    assert (ok, detail) == (False, "not downloading 3.0.0")  # the download is over


def test_a_chunk_that_never_comes_is_asked_for_again_then_the_download_fails(rig):
    gate = rig.gate("gate-entry", ask_again_s=0.2)
    assert gate.ota is not None
    wire = Wire(rig.mosquitto.host, rig.mosquitto.port, rig.store_id)
    topic = ota_topic(rig.store_id, "gate-entry")
    try:
        args = make_offer(sign_image(VENDOR, BIG, "3.0.0", "gate"), BIG)
        assert gate.ota.handle_command(OTA_OFFER, _command(args))[0]  # nobody sends chunks
        wire.wait_for(
            lambda: any(s.phase is OtaPhase.FAILED for s in wire.decoded(topic)),
            "the download to give up",
        )
        statuses = wire.decoded(topic)
        asks = [s.chunk for s in statuses if s.phase is OtaPhase.DOWNLOADING]
        assert asks == [0] * MAX_ASKS
        assert statuses[-1].detail == f"chunk 0 of 10 never came ({MAX_ASKS} asks)"
        assert (gate.ota.active, gate.ota.slots["B"]) == ("A", None)
    finally:
        wire.close()
