"""The OTA API and the gateway's wiring (messages in through its real Dispatcher, no broker)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from devices import protocol as p
from devices.ota import OTA_CONFIRM, OTA_OFFER, generate_private_key, public_key_text, sign_image
from edge.api.app import create_app
from edge.app import Gateway
from edge.config import ConfigError, parse_config
from tests.edge.test_engine import _planogram

KEY = generate_private_key()
IMAGE = b"\x7fELF gate firmware 2.0.0" * 50
STAFF = {"Authorization": "Bearer s3cret"}


class Rig:
    def __init__(self, tmp_path, *, trusted: bool = True) -> None:
        ota: dict[str, Any] = {"health_window_s": 4, "boot_timeout_s": 10, "canary_share": 0.5}
        if trusted:
            ota["trusted_public_key"] = public_key_text(KEY.public_key())
        cfg = parse_config(
            {
                "store_id": "s-1",
                "planogram": "x.yaml",
                "gates": [
                    {"device_id": "gate-in", "direction": "entry"},
                    {"device_id": "gate-out", "direction": "exit"},
                ],
                "database": {"path": str(tmp_path / "g.db")},
                "ota": ota,
            },
            base_dir=tmp_path,
            env={},
        )
        self.now = 1_000_000
        self.gw = Gateway(cfg, planogram=_planogram(), clock_ms=lambda: self.now)
        self.client = TestClient(
            create_app(cfg.database.path, store_id="s-1", actions=self.gw, staff_token="s3cret")
        )
        self.seq: dict[str, int] = {}

    def send(self, topic: str, body: dict[str, Any]) -> bool:
        device = topic.split("/")[3]
        self.seq[device] = self.seq.get(device, 0) + 1
        payload = {"seq": self.seq[device], "ts": self.now, **body}
        return self.gw.dispatcher.dispatch(topic, json.dumps(payload).encode())

    def birth(self, device: str, firmware: str) -> None:
        self.send(
            p.birth_topic("s-1", device),
            {
                "device_type": "gate",
                "firmware": firmware,
                "birth_count": 0,
                "reported": {"heartbeat_s": 1.0},
            },
        )

    def heartbeat(self, device: str, firmware: str) -> None:
        self.send(p.heartbeat_topic("s-1", device), {"uptime_s": 1, "firmware": firmware})

    def ota(self, device: str, phase: str, slot: str = "B", detail: str = "") -> None:
        body = {"version": "2.0.0", "phase": phase, "slot": slot, "detail": detail}
        assert self.send(p.ota_topic("s-1", device), body)

    def commands(self, device: str) -> list[str]:
        return [
            e["body"]["command"]
            for e in self.gw.store.events("command_sent")
            if e["device_id"] == device
        ]

    def upload(self, manifest: dict[str, Any], image: bytes = IMAGE, headers=STAFF):
        body = {"manifest": manifest, "image_b64": base64.b64encode(image).decode()}
        return self.client.post("/api/v1/ota/images", json=body, headers=headers)


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.gw.store.close()


def _manifest(version: str = "2.0.0", key=KEY) -> dict[str, Any]:
    return sign_image(key, IMAGE, version, "gate").model_dump(mode="json")


def test_an_image_that_does_not_verify_is_refused_with_the_reason(rig):
    assert rig.upload(_manifest(), headers={}).status_code == 401
    forged = rig.upload(_manifest(key=generate_private_key()))
    assert forged.status_code == 422
    assert forged.json()["detail"] == (
        "image refused: the signature does not verify against the trusted public key"
    )
    tampered = rig.upload(_manifest(), IMAGE[:-1] + b"?")
    assert tampered.status_code == 422
    assert "SHA-256" in tampered.json()["detail"]
    relabelled = rig.upload({**_manifest(), "version": "9.9.9"})
    assert relabelled.status_code == 422
    assert "signature does not verify" in relabelled.json()["detail"]
    assert rig.client.get("/api/v1/ota/images", headers=STAFF).json()["total"] == 0
    good = rig.upload(_manifest())
    assert good.status_code == 201, good.text
    assert good.json()["version"] == "2.0.0"
    assert rig.upload(_manifest()).status_code == 409
    [image] = rig.client.get("/api/v1/ota/images", headers=STAFF).json()["items"]
    assert (image["device_type"], image["size"]) == ("gate", len(IMAGE))


def test_without_a_trusted_key_nothing_is_accepted(tmp_path):
    rig = Rig(tmp_path, trusted=False)
    refused = rig.upload(_manifest())
    assert refused.status_code == 503
    assert "no trusted firmware key" in refused.json()["detail"]
    rig.gw.store.close()


def test_a_bad_trusted_key_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"ota\.trusted_public_key"):
        parse_config(
            {
                "store_id": "s-1",
                "planogram": "x.yaml",
                "gates": [{"device_id": "g", "direction": "entry"}],
                "ota": {"trusted_public_key": "not-a-key"},
            },
            base_dir=tmp_path,
            env={},
        )


def test_a_rollout_through_the_api_and_the_gateways_message_handlers(rig):
    rig.birth("gate-in", "1.0.0")
    rig.birth("gate-out", "1.0.0")
    assert rig.upload(_manifest()).status_code == 201
    request = {"device_type": "gate", "version": "2.0.0", "canary": ["gate-out"]}
    assert rig.client.post("/api/v1/ota/rollouts", json=request).status_code == 401
    created = rig.client.post("/api/v1/ota/rollouts", json=request, headers=STAFF)
    assert created.status_code == 201, created.text
    rid = created.json()["rollout_id"]
    url = f"/api/v1/ota/rollouts/{rid}"
    assert rig.commands("gate-out") == [OTA_OFFER]
    assert rig.commands("gate-in") == []
    again = rig.client.post("/api/v1/ota/rollouts", json=request, headers=STAFF)
    assert again.status_code == 409

    rig.ota("gate-out", "installed")
    rig.birth("gate-out", "2.0.0")
    rig.ota("gate-out", "booted")
    rig.now += 1000
    rig.heartbeat("gate-out", "2.0.0")
    status = rig.client.get(url, headers=STAFF).json()
    assert status["state"] == "canary"
    assert [(d["device_id"], d["wave"], d["state"]) for d in status["devices"]] == [
        ("gate-out", "canary", "verifying"),
        ("gate-in", "rest", "pending"),
    ]
    for _ in range(4):
        rig.now += 1000
        rig.heartbeat("gate-out", "2.0.0")
        rig.gw.ota.tick()
    assert rig.commands("gate-out") == [OTA_OFFER, OTA_CONFIRM]
    rig.ota("gate-out", "confirmed")
    assert rig.commands("gate-in") == [OTA_OFFER], "the rest follows the confirmed canary"
    status = rig.client.get(url, headers=STAFF).json()
    assert status["state"] == "rolling"
    assert status["counts"] == {"confirmed": 1, "offered": 1}
    listed = rig.client.get("/api/v1/ota/rollouts", headers=STAFF).json()["items"]
    assert [(r["rollout_id"], r["state"]) for r in listed] == [(rid, "rolling")]

    halted = rig.client.post(f"{url}/halt", json={"reason": "store opening"}, headers=STAFF)
    assert halted.status_code == 200
    assert halted.json()["reason"] == "halted by staff: store opening"
    assert rig.client.get("/api/v1/ota/rollouts/nope", headers=STAFF).status_code == 404


def test_rollout_requests_that_cannot_be_done_are_clear_4xx(rig):
    rig.birth("gate-in", "1.0.0")
    body = {"device_type": "gate", "version": "2.0.0"}
    missing = rig.client.post("/api/v1/ota/rollouts", json=body, headers=STAFF)
    assert missing.status_code == 404
    assert "no gate firmware 2.0.0" in missing.json()["detail"]
    bad = rig.client.post("/api/v1/ota/rollouts", json={**body, "canary_share": 2}, headers=STAFF)
    assert bad.status_code == 422
    typo = rig.client.post("/api/v1/ota/rollouts", json={**body, "canery": []}, headers=STAFF)
    assert typo.status_code == 422
