"""The rollout orchestrator against a real SQLite store, a fake clock and scripted devices."""

from __future__ import annotations

from typing import Any

import pytest

from devices.ota import (
    CHUNK_BYTES,
    OTA_CHUNK,
    OTA_CONFIRM,
    OTA_OFFER,
    OTA_ROLLBACK,
    OtaChunk,
    OtaOffer,
    decode_image,
    generate_private_key,
    public_key_text,
    sign_image,
    verify_image,
)
from devices.protocol import OtaPhase, OtaStatus
from edge.config import OtaConfig
from edge.ota import ImageRefused, OtaConflict, OtaNotConfigured, RolloutOrchestrator
from edge.store.repo import Store

KEY = generate_private_key()
IMAGE = b"firmware 2.0.0 " * 100
OLD, NEW = "1.0.0", "2.0.0"


class Fleet:
    """Gate devices that answer the orchestrator's commands the way the script says:

    * ``good``: install, reboot into the new version, heartbeat, confirm when asked
    * ``hang``: boots the new version, then sends no heartbeat
    * ``refuse``: refuses the image (as a device does with a bad signature)
    * ``mute``: takes the offer and is never heard of again
    """

    def __init__(self, tmp_path, *, trusted=KEY, **ota: Any) -> None:
        self.path = tmp_path / "g.db"
        self.now = 1_000_000
        self.store = Store.open(self.path)
        self.sent: list[tuple[str, str, dict[str, Any]]] = []
        self.inbox: list[tuple[str, str, dict[str, Any]]] = []
        self.online: set[str] = set()
        self.script: dict[str, str] = {}
        self.running: dict[str, str] = {}
        self.seq = 0
        defaults = {"health_window_s": 10, "boot_timeout_s": 30, "canary_share": 0.25}
        self.config = OtaConfig(
            trusted_public_key=public_key_text(trusted.public_key()) if trusted else None,
            **{**defaults, **ota},
        )
        self.orch = self.orchestrator()

    def orchestrator(self) -> RolloutOrchestrator:
        return RolloutOrchestrator(
            self.store, self.config, self._send, lambda d: d in self.online, lambda: self.now
        )

    def _send(self, device_id: str, name: str, args: dict[str, Any]) -> str:
        self.sent.append((device_id, name, args))
        self.inbox.append((device_id, name, args))
        return f"cmd-{len(self.sent)}"

    def add(self, device_id: str, script: str = "good", heartbeat_s: float = 1.0) -> None:
        self.store.record_birth(device_id, "gate", OLD, 0, 0, self.now)
        self.store.set_reported(device_id, {"heartbeat_s": heartbeat_s}, self.now)
        self.online.add(device_id)
        self.script[device_id] = script
        self.running[device_id] = OLD

    def register(self, version: str = NEW) -> None:
        self.orch.register_image(sign_image(KEY, IMAGE, version, "gate").model_dump(), IMAGE)

    def status(self, device: str, phase: OtaPhase, slot: str = "B", detail: str = "") -> None:
        self.seq += 1
        msg = OtaStatus(seq=self.seq, ts=self.now, version=NEW, phase=phase, slot=slot,
                        detail=detail)  # fmt: skip
        self.orch.on_status(device, msg)

    def reboot(self, device: str, version: str) -> None:
        self.orch.on_device_state(device, "offline")
        self.running[device] = version
        self.orch.on_birth(device, version)
        self.orch.on_device_state(device, "online")

    def deliver(self) -> None:
        """The devices act on the commands sent so far."""
        while self.inbox:
            device, name, args = self.inbox.pop(0)
            script = self.script[device]
            if name == OTA_OFFER:
                offer = OtaOffer.model_validate(args)
                verify_image(offer.manifest, decode_image(offer.image_b64), KEY.public_key())
                if script == "refuse":
                    self.status(device, OtaPhase.FAILED, "A", "bad signature")
                    self.orch.on_command_ack(device, OTA_OFFER, False, "bad signature")
                    continue
                self.orch.on_command_ack(device, OTA_OFFER, True, "")
                self.status(device, OtaPhase.INSTALLED)
                if script == "mute":
                    continue
                self.reboot(device, NEW)
                self.status(device, OtaPhase.BOOTED)
            elif name == OTA_CONFIRM:
                self.status(device, OtaPhase.CONFIRMED)
            elif name == OTA_ROLLBACK and self.running[device] == NEW:
                self.reboot(device, OLD)
                self.status(device, OtaPhase.ROLLED_BACK, "A", "told to")

    def run(self, seconds: int) -> None:
        """Time passes in 1 s steps: commands delivered, heartbeats sent, ticks."""
        for _ in range(seconds):
            self.deliver()
            self.now += 1000
            for device, version in self.running.items():
                if device in self.online and not (version == NEW and self.script[device] == "hang"):
                    self.orch.on_heartbeat(device, version)
            self.orch.tick()
            self.deliver()

    def rollout(self, rollout_id: str) -> dict[str, Any]:
        found = self.store.ota_rollout(rollout_id)
        assert found is not None
        return found

    def states(self, rollout_id: str) -> dict[str, str]:
        return {d["device_id"]: d["state"] for d in self.rollout(rollout_id)["devices"]}

    def offered(self) -> list[str]:
        return [d for d, name, _ in self.sent if name == OTA_OFFER]


@pytest.fixture
def fleet(tmp_path):
    f = Fleet(tmp_path)
    yield f
    f.store.close()


def test_canaries_first_then_the_rest_once_the_canary_is_confirmed(fleet):
    for d in ("gate-1", "gate-2", "gate-3", "gate-4"):
        fleet.add(d)
    fleet.register()
    rollout = fleet.orch.create_rollout("gate", NEW)
    rid = rollout["rollout_id"]
    assert rollout["state"] == "canary"
    first = rollout["devices"][0]
    assert (first["device_id"], first["wave"]) == ("gate-1", "canary")
    assert fleet.offered() == ["gate-1"]
    fleet.deliver()
    assert fleet.states(rid)["gate-1"] == "booted"
    fleet.run(5)
    assert fleet.states(rid)["gate-1"] == "verifying"
    assert fleet.offered() == ["gate-1"], "nobody else before the canary is confirmed"
    fleet.run(10)
    assert fleet.states(rid)["gate-1"] == "confirmed"
    assert sorted(fleet.offered()) == ["gate-1", "gate-2", "gate-3", "gate-4"]
    assert fleet.rollout(rid)["state"] == "rolling"
    fleet.run(15)
    final = fleet.rollout(rid)
    assert final["state"] == "done"
    assert set(fleet.states(rid).values()) == {"confirmed"}
    assert final["counts"] == {"confirmed": 4}
    assert not any(name == OTA_ROLLBACK for _, name, _ in fleet.sent)


def test_a_canary_that_fails_health_is_rolled_back_and_the_rollout_halts(fleet):
    fleet.add("gate-1", "hang")
    fleet.add("gate-2")
    fleet.register()
    rid = fleet.orch.create_rollout("gate", NEW, canary_share=0.5)["rollout_id"]
    fleet.run(20)
    rollout = fleet.rollout(rid)
    assert rollout["state"] == "halted"
    assert rollout["reason"].startswith("canary device gate-1 failed its health check")
    assert "since it booted (expected one every 1 s)" in rollout["reason"]
    assert ("gate-1", OTA_ROLLBACK) in [(d, n) for d, n, _ in fleet.sent]
    assert fleet.states(rid) == {"gate-1": "rolled_back", "gate-2": "pending"}
    assert fleet.running["gate-1"] == OLD
    fleet.run(60)
    assert fleet.offered() == ["gate-1"], "the rest is never offered after a halt"
    # a halted rollout no longer blocks a new one (after a fixed image, say)
    fleet.register("2.0.1")
    assert fleet.orch.create_rollout("gate", "2.0.1")["state"] == "canary"


def test_silence_in_the_health_window_fails_the_check(fleet):
    fleet.add("gate-1", heartbeat_s=2.0)
    fleet.register()
    rid = fleet.orch.create_rollout("gate", NEW)["rollout_id"]
    fleet.run(3)
    assert fleet.states(rid)["gate-1"] == "verifying"
    fleet.script["gate-1"] = "hang"  # the app dies mid-window
    fleet.run(8)
    rollout = fleet.rollout(rid)
    assert rollout["state"] == "halted"
    assert "no heartbeat for 7.0 s (expected one every 2 s)" in rollout["reason"]


def test_going_offline_in_the_health_window_fails_the_check(fleet):
    fleet.add("gate-1")
    fleet.register()
    rid = fleet.orch.create_rollout("gate", NEW)["rollout_id"]
    fleet.run(3)
    fleet.orch.on_device_state("gate-1", "offline")
    rollout = fleet.rollout(rid)
    assert rollout["state"] == "halted"
    assert rollout["reason"].endswith("went offline during the health window")


def test_a_refused_image_halts_without_a_rollback(fleet):
    fleet.add("gate-1", "refuse")
    fleet.register()
    rid = fleet.orch.create_rollout("gate", NEW)["rollout_id"]
    fleet.run(2)
    rollout = fleet.rollout(rid)
    assert fleet.states(rid) == {"gate-1": "failed"}
    assert rollout["reason"] == (
        "canary device gate-1 could not install 2.0.0: failed (slot A): bad signature"
    )
    assert not any(name == OTA_ROLLBACK for _, name, _ in fleet.sent)


def test_a_device_that_never_comes_back_times_out(fleet):
    fleet.add("gate-1", "mute")
    fleet.register()
    rid = fleet.orch.create_rollout("gate", NEW)["rollout_id"]
    fleet.run(29)
    assert fleet.states(rid) == {"gate-1": "installing"}
    fleet.run(3)
    assert fleet.states(rid) == {"gate-1": "failed"}
    assert "did not come back running 2.0.0 within 30 s" in fleet.rollout(rid)["reason"]


def test_a_device_that_comes_back_on_the_old_version_has_rolled_back(fleet):
    fleet.add("gate-1")
    fleet.register()
    rid = fleet.orch.create_rollout("gate", NEW)["rollout_id"]
    fleet.run(2)
    fleet.orch.on_birth("gate-1", OLD)  # e.g. its watchdog reverted it, quickly
    assert fleet.states(rid) == {"gate-1": "rolled_back"}
    assert "came back running 1.0.0 instead of 2.0.0" in fleet.rollout(rid)["reason"]


def test_a_failed_device_seen_on_its_old_version_is_rolled_back(fleet):
    fleet.add("gate-1")
    fleet.register()
    rid = fleet.orch.create_rollout("gate", NEW)["rollout_id"]
    fleet.run(2)
    fleet.reboot("gate-1", OLD)  # offline first (fails the check), then a birth
    [device] = fleet.rollout(rid)["devices"]
    assert device["state"] == "rolled_back"
    assert device["detail"].endswith(
        "went offline during the health window; came back running 1.0.0"
    )


def test_offline_devices_wait_and_parallelism_is_capped(tmp_path):
    fleet = Fleet(tmp_path, max_parallel=2, canary_share=0.1)
    for d in ("gate-1", "gate-2", "gate-3", "gate-4", "gate-5"):
        fleet.add(d)
    fleet.online.discard("gate-1")  # the canary is away
    fleet.register()
    rid = fleet.orch.create_rollout("gate", NEW)["rollout_id"]
    fleet.run(3)
    assert fleet.offered() == []
    fleet.online.add("gate-1")
    fleet.orch.on_device_state("gate-1", "online")
    assert fleet.offered() == ["gate-1"]
    fleet.run(12)
    assert fleet.offered() == ["gate-1", "gate-2", "gate-3"]  # two at a time
    fleet.run(40)
    assert fleet.rollout(rid)["state"] == "done"
    fleet.store.close()


def test_progress_survives_a_gateway_restart(fleet):
    fleet.add("gate-1")
    fleet.add("gate-2")
    fleet.register()
    rid = fleet.orch.create_rollout("gate", NEW, canary_share=0.5)["rollout_id"]
    fleet.run(5)
    assert fleet.states(rid) == {"gate-1": "verifying", "gate-2": "pending"}
    fleet.store.close()
    fleet.now += 20_000  # the gateway was away for 20 s: the heartbeat clock restarts
    fleet.store = Store.open(fleet.path)
    fleet.orch = fleet.orchestrator()
    fleet.run(10)
    assert fleet.states(rid)["gate-1"] == "confirmed"
    fleet.run(15)
    assert fleet.rollout(rid)["state"] == "done"


def test_images_that_do_not_verify_are_refused(fleet):
    manifest = sign_image(KEY, IMAGE, NEW, "gate").model_dump()
    with pytest.raises(ImageRefused, match="SHA-256"):
        fleet.orch.register_image(manifest, IMAGE[:-1] + b"!")
    forged = sign_image(generate_private_key(), IMAGE, NEW, "gate").model_dump()
    with pytest.raises(ImageRefused, match="does not verify against the trusted public key"):
        fleet.orch.register_image(forged, IMAGE)
    with pytest.raises(ImageRefused, match="invalid manifest"):
        fleet.orch.register_image({**manifest, "size": "big"}, IMAGE)
    assert fleet.store.ota_images() == []
    fleet.orch.register_image(manifest, IMAGE)
    with pytest.raises(OtaConflict, match="already registered"):
        fleet.orch.register_image(manifest, IMAGE)


def test_an_image_that_no_longer_verifies_is_never_offered(fleet, tmp_path):
    fleet.add("gate-1")
    fleet.register()
    fleet.store.close()
    other = Fleet(tmp_path, trusted=generate_private_key())  # the trusted key was rotated
    other.add("gate-1")
    rid = other.orch.create_rollout("gate", NEW)["rollout_id"]
    assert other.offered() == []
    rollout = other.rollout(rid)
    assert rollout["state"] == "halted"
    assert "no longer verifies" in rollout["reason"]
    other.store.close()


def test_rollout_requests_that_cannot_be_done(fleet, tmp_path):
    fleet.add("gate-1")
    with pytest.raises(LookupError, match=r"no gate firmware 2\.0\.0"):
        fleet.orch.create_rollout("gate", NEW)
    fleet.register()
    with pytest.raises(LookupError, match="gate-9"):
        fleet.orch.create_rollout("gate", NEW, devices=["gate-9"])
    rid = fleet.orch.create_rollout("gate", NEW)["rollout_id"]
    with pytest.raises(OtaConflict, match="still running"):
        fleet.orch.create_rollout("gate", NEW)
    assert fleet.orch.halt(rid, "wrong image")["reason"] == "halted by staff: wrong image"
    with pytest.raises(OtaConflict, match="halted already"):
        fleet.orch.halt(rid, "again")
    fleet.running["gate-1"] = NEW
    fleet.store.record_heartbeat("gate-1", "gate", fleet.now, {"uptime_s": 1, "firmware": NEW})
    with pytest.raises(OtaConflict, match="no gate device needs"):
        fleet.orch.create_rollout("gate", NEW)
    unconfigured = Fleet(tmp_path / "x", trusted=None)
    with pytest.raises(OtaNotConfigured):
        unconfigured.orch.register_image({}, IMAGE)
    unconfigured.store.close()


def test_every_change_is_an_event(fleet):
    fleet.add("gate-1")
    fleet.register()
    fleet.orch.create_rollout("gate", NEW)
    fleet.run(15)
    device_states = [e["body"]["state"] for e in fleet.store.events("ota_device")]
    assert device_states == ["offered", "installing", "booted", "verifying", "confirmed"]
    assert [e["body"]["state"] for e in fleet.store.events("ota_rollout")] == [
        "canary",
        "rolling",
        "done",
    ]
    assert len(fleet.store.events("ota_image")) == 1


def _asks(fleet: Fleet, chunk: int) -> None:
    fleet.seq += 1
    fleet.orch.on_status(
        "gate-1",
        OtaStatus(
            seq=fleet.seq, ts=fleet.now, version=NEW, phase=OtaPhase.DOWNLOADING, slot="A",
            chunk=chunk,
        ),
    )  # fmt: skip


def test_a_large_image_goes_chunk_by_chunk_as_the_device_asks(fleet):
    fleet.add("gate-1")
    big = (b"firmware 2.0.0, the large one " * 12_000)[: 5 * CHUNK_BYTES + 10]
    fleet.orch.register_image(sign_image(KEY, big, NEW, "gate").model_dump(), big)
    rid = fleet.orch.create_rollout("gate", NEW)["rollout_id"]
    [(_, name, args)] = fleet.sent
    offer = OtaOffer.model_validate(args)
    assert (name, offer.image_b64, offer.chunks) == (OTA_OFFER, None, 6)
    got = b""
    for i in (0, 1, 1, 2, 3, 4, 5):  # chunk 1 asked twice (a lost chunk, asked again)
        _asks(fleet, i)
        _, name, args = fleet.sent[-1]
        chunk = OtaChunk.model_validate(args)
        assert (name, chunk.index, chunk.version) == (OTA_CHUNK, i, NEW)
        if len(got) == i * CHUNK_BYTES:
            got += decode_image(chunk.data_b64, limit=CHUNK_BYTES)
    assert got == big
    assert fleet.states(rid) == {"gate-1": "installing"}
    fleet.orch.on_command_ack("gate-1", OTA_CHUNK, False, "not downloading 2.0.0")
    assert fleet.states(rid) == {"gate-1": "installing"}  # a late duplicate, refused
    _asks(fleet, 6)  # there is no chunk 6
    assert fleet.states(rid) == {"gate-1": "failed"}
    assert "asked for chunk 6 of 6" in fleet.rollout(rid)["reason"]
