import json

import pytest

from devices import protocol as p
from devices.credentials import hash_password
from edge.app import Gateway
from edge.config import default_config_path, load_config
from edge.ingest.dispatcher import Dispatcher, MissingHandlerError
from edge.store.repo import Store


@pytest.fixture
def gateway(tmp_path):
    # plain session tokens at the gate (tests/edge/test_checkin.py checks signed ones)
    cfg = load_config(default_config_path(), env={"STOREEDGE_SHOPPERS__VERIFY_CHECKIN": "false"})
    cfg = cfg.model_copy(
        update={"database": cfg.database.model_copy(update={"path": tmp_path / "g.db"})}
    )
    gw = Gateway(cfg)
    yield gw
    gw.store.close()


def test_every_inbound_message_kind_has_a_gateway_handler(gateway):
    assert set(gateway.handlers()) == set(p.INBOUND)
    assert set(gateway.dispatcher.handlers) == set(p.INBOUND)


def test_a_missing_handler_fails_at_start(tmp_path):
    store = Store.open(tmp_path / "d.db")
    handlers = {k: (lambda _i: None) for k in p.INBOUND if k is not p.MessageKind.CMD_ACK}
    with pytest.raises(MissingHandlerError, match="cmd/ack"):
        Dispatcher("s", {}, handlers, store)
    store.close()


def test_rejections_are_dead_lettered_with_reasons(gateway):
    d = gateway.dispatcher
    store_id = gateway.config.store_id
    gate = p.gate_topic(store_id, "gate-entry")
    good = {"seq": 1, "ts": 1, "direction": "entry", "session_token": "tok-1"}
    assert not d.dispatch(gate, b"{nope")
    assert not d.dispatch(p.gate_topic(store_id, "intruder"), json.dumps(good).encode())
    assert not d.dispatch(p.gate_topic("other-store", "gate-entry"), json.dumps(good).encode())
    assert not d.dispatch(gate, json.dumps({**good, "seq": -4}).encode())
    # a handler that refuses (exit direction sent by the entry gate) is a dead letter too
    assert not d.dispatch(gate, json.dumps({**good, "direction": "exit"}).encode())
    # seq 1 was taken by the refused message; the next good message is still processed
    assert d.dispatch(gate, json.dumps({**good, "seq": 2}).encode())
    reasons = [r["reason"] for r in reversed(gateway.store.dead_letters())]
    assert len(reasons) == 5
    assert "not JSON" in reasons[0]
    assert "unknown device 'intruder'" in reasons[1]
    assert "not this store" in reasons[2]
    assert "seq" in reasons[3]
    assert "configured as entry" in reasons[4]
    assert d.counts["dead_letters"] == 5
    assert gateway.store.session("tok-1")["state"] == "open"


def test_duplicate_seq_is_dropped(gateway):
    d = gateway.dispatcher
    topic = p.gate_topic(gateway.config.store_id, "gate-entry")
    payload = json.dumps({"seq": 7, "ts": 1, "direction": "entry", "session_token": "tok-9"})
    assert d.dispatch(topic, payload.encode())
    assert not d.dispatch(topic, payload.encode())
    assert d.counts["duplicates"] == 1
    kinds = [e["kind"] for e in gateway.store.events()]
    # the gate had not been born as far as this gateway knows: it is asked to rebirth
    assert kinds == ["session_open", "device_state", "command_sent"]


def test_the_gateways_own_messages_are_not_dead_letters(gateway):
    own = p.gateway_state_topic(gateway.config.store_id)
    assert not gateway.dispatcher.dispatch(own, b'{"seq": 0, "ts": 1, "state": "online"}')
    assert gateway.store.dead_letter_count() == 0
    assert gateway.dispatcher.counts["own"] == 1


def test_a_last_will_with_an_old_seq_is_still_applied(gateway):
    d = gateway.dispatcher
    sid = gateway.config.store_id
    d.dispatch(p.state_topic(sid, "shelf-1"), b'{"seq": 0, "ts": 1, "state": "online"}')
    for seq in range(1, 5000):  # a long connection: far beyond the dedupe window
        d.seq.check("shelf-1", seq, seq)
    # the will was registered at connect time, so it carries the connection's first seq
    assert d.dispatch(p.state_topic(sid, "shelf-1"), b'{"seq": 0, "ts": 9, "state": "offline"}')
    [dev] = gateway.store.devices()
    assert dev["state"] == "offline"


def test_provisioned_devices_are_known_to_the_gateway(tmp_path):
    cfg = load_config(default_config_path(), env={})
    cfg = cfg.model_copy(
        update={"database": cfg.database.model_copy(update={"path": tmp_path / "g.db"})}
    )
    store = Store.open(tmp_path / "g.db")
    store.provision(cfg.store_id, "fridge-9", "fridge", hash_password("x"), 1)
    store.close()
    gw = Gateway(cfg)
    assert gw.dispatcher.known_devices["fridge-9"] == "fridge"
    birth = b'{"seq": 0, "ts": 1, "device_type": "fridge", "firmware": "1.0", "birth_count": 0}'
    assert gw.dispatcher.dispatch(p.birth_topic(cfg.store_id, "fridge-9"), birth)
    gw.store.close()


def test_a_device_goes_offline_on_its_will_or_when_silent(tmp_path):
    cfg = load_config(default_config_path(), env={"STOREEDGE_DEVICES__OFFLINE_AFTER_S": "10"})
    cfg = cfg.model_copy(
        update={"database": cfg.database.model_copy(update={"path": tmp_path / "g.db"})}
    )
    now = [1_000_000]
    gw = Gateway(cfg, clock_ms=lambda: now[0])
    sid = cfg.store_id
    beat = b'{"seq": 1, "ts": 5, "uptime_s": 12.5, "firmware": "2.1", "battery_pct": 80, '
    assert gw.dispatcher.dispatch(p.heartbeat_topic(sid, "gate-entry"), beat + b'"rssi_dbm": -60}')
    assert gw.dispatcher.dispatch(p.heartbeat_topic(sid, "gate-exit"), beat + b'"rssi_dbm": -61}')
    devices = {d["device_id"]: d for d in gw.store.devices()}
    assert devices["gate-entry"]["state"] == "online"
    assert devices["gate-entry"]["battery_pct"] == 80
    assert devices["gate-entry"]["uptime_s"] == 12.5
    # the last will of one
    assert gw.dispatcher.dispatch(
        p.state_topic(sid, "gate-exit"), b'{"seq": 0, "ts": 6, "state": "offline"}'
    )
    # silence of the other, past offline_after_s
    now[0] += 5_000
    assert gw.liveness.check(now[0]) == []
    now[0] += 6_000
    assert gw.liveness.check(now[0]) == ["gate-entry"]
    devices = {d["device_id"]: d for d in gw.store.devices()}
    assert devices["gate-exit"]["state"] == "offline"
    assert "last will" in devices["gate-exit"]["offline_reason"]
    assert devices["gate-entry"]["state"] == "offline"
    assert "nothing heard for 11 s" in devices["gate-entry"]["offline_reason"]
    # it speaks again: online
    assert gw.dispatcher.dispatch(
        p.heartbeat_topic(sid, "gate-entry"),
        beat.replace(b'"seq": 1', b'"seq": 2') + b'"rssi_dbm": -60}',
    )
    assert {d["device_id"]: d["state"] for d in gw.store.devices()}["gate-entry"] == "online"
    states = [e["body"]["state"] for e in gw.store.events("device_state")]
    assert states == ["online", "online", "offline", "offline", "online"]
    bad = gw.dispatcher.dispatch(
        p.heartbeat_topic(sid, "gate-entry"),
        b'{"seq": 3, "ts": 7, "uptime_s": -1, "firmware": "x"}',
    )
    assert not bad
    assert "uptime_s" in gw.store.dead_letters()[0]["reason"]
    gw.store.close()


def test_unknown_device_types_and_spoofed_ids_are_dead_lettered(gateway):
    d = gateway.dispatcher
    sid = gateway.config.store_id
    toaster = b'{"seq": 0, "ts": 1, "device_type": "toaster", "firmware": "1", "birth_count": 0}'
    assert not d.dispatch(p.birth_topic(sid, "gate-entry"), toaster)
    spoof = b'{"seq": 1, "ts": 2, "device_id": "gate-exit", "uptime_s": 1, "firmware": "x"}'
    assert not d.dispatch(p.heartbeat_topic(sid, "gate-entry"), spoof)
    reasons = [r["reason"] for r in gateway.store.dead_letters()]
    assert any(r.startswith("invalid birth: device_type: Input should be 'shelf'") for r in reasons)
    assert any("payload says device 'gate-exit'" in r for r in reasons)
    assert all(dev["device_type"] != "toaster" for dev in gateway.store.devices())
