import json

import pytest

from devices import protocol as p


def test_topics_follow_the_design_shape():
    assert p.weight_topic("s1", "shelf-1") == "storeedge/v1/s1/shelf-1/telemetry/weight"
    assert p.gate_topic("s1", "gate-a") == "storeedge/v1/s1/gate-a/event/gate"
    assert p.command_ack_topic("s1", "d", "rebirth") == "storeedge/v1/s1/d/cmd/rebirth/ack"
    assert p.receipt_topic("s1", "tok-1") == "storeedge/v1/s1/gateway/receipt/tok-1"


@pytest.mark.parametrize(
    ("topic", "kind", "command"),
    [
        ("storeedge/v1/s/d/birth", p.MessageKind.BIRTH, None),
        ("storeedge/v1/s/d/state", p.MessageKind.STATE, None),
        ("storeedge/v1/s/d/telemetry/weight", p.MessageKind.WEIGHT, None),
        ("storeedge/v1/s/d/event/gate", p.MessageKind.GATE, None),
        ("storeedge/v1/s/d/cmd/rebirth/ack", p.MessageKind.CMD_ACK, "rebirth"),
    ],
)
def test_parse_topic_round_trips(topic, kind, command):
    assert p.parse_topic(topic) == ("s", "d", kind, command)


def test_every_inbound_kind_has_a_topic_the_gateway_subscribes_to():
    filters = p.gateway_subscriptions("s")

    def matches(flt: str, topic: str) -> bool:
        fp, tp = flt.split("/"), topic.split("/")
        return len(fp) == len(tp) and all(f in ("+", t) for f, t in zip(fp, tp, strict=True))

    samples = {
        p.MessageKind.BIRTH: p.birth_topic("s", "d"),
        p.MessageKind.STATE: p.state_topic("s", "d"),
        p.MessageKind.WEIGHT: p.weight_topic("s", "d"),
        p.MessageKind.GATE: p.gate_topic("s", "d"),
        p.MessageKind.POSITIONS: p.positions_topic("s", "d"),
        p.MessageKind.HEARTBEAT: p.heartbeat_topic("s", "d"),
        p.MessageKind.REPORTED: p.reported_topic("s", "d"),
        p.MessageKind.CMD_ACK: p.command_ack_topic("s", "d", "rebirth"),
        p.MessageKind.TEMPERATURE: p.temperature_topic("s", "d"),
        p.MessageKind.OTA: p.ota_topic("s", "d"),
        p.MessageKind.PRODUCT: p.product_topic("s", "d"),
        p.MessageKind.HANDOFF: p.handoff_topic("s", "d"),
    }
    assert set(samples) == set(p.INBOUND)
    for kind, topic in samples.items():
        assert any(matches(f, topic) for f in filters), kind
        assert p.parse_topic(topic)[2] is kind


def test_decode_weight_batch():
    payload = json.dumps({"seq": 3, "ts": 1000, "samples": [[1.0] * 12, [2.0] * 12]}).encode()
    inbound = p.decode(p.weight_topic("s", "shelf-1"), payload)
    assert inbound.device_id == "shelf-1"
    assert isinstance(inbound.message, p.WeightBatch)
    assert inbound.message.sample_count == 12


def test_lenient_on_unknown_keys_strict_on_known_ones():
    ok = p.decode(
        p.gate_topic("s", "g"),
        b'{"seq": 1, "ts": 5, "direction": "entry", "session_token": "abcd", "x": 1}',
    )
    assert ok.message.session_token == "abcd"  # type: ignore[union-attr]
    with pytest.raises(p.DecodeError, match="seq"):
        p.decode(
            p.gate_topic("s", "g"),
            b'{"seq": -1, "ts": 5, "direction": "entry", "session_token": "abcd"}',
        )


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("storeedge/v1/s/d/telemetry/weight", b"not json", "not JSON"),
        ("storeedge/v1/s/d/telemetry/weight", b"[1, 2]", "JSON object"),
        ("storeedge/v1/s/d/telemetry/weight", b'{"seq": "x", "ts": 1, "samples": [[1]]}', "seq"),
        (
            "storeedge/v1/s/d/telemetry/weight",
            b'{"seq": 1, "ts": 1, "samples": [[1], [1, 2]]}',
            "same",
        ),
        ("storeedge/v1/s/d/telemetry/heat", b'{"seq": 1, "ts": 1}', "unknown message type"),
        ("other/v1/s/d/birth", b"{}", "not under"),
        ("storeedge/v1/s/gateway/state", b"{}", "gateway topic"),
    ],
)
def test_decode_rejects_with_a_reason(topic, payload, reason):
    with pytest.raises(p.DecodeError) as info:
        p.decode(topic, payload)
    assert reason in info.value.reason


def test_messages_are_frozen():
    msg = p.GateEvent(seq=1, ts=1, direction="exit", session_token="abcd")
    with pytest.raises(ValueError, match="frozen"):
        msg.seq = 2  # type: ignore[misc]


def test_acl_patterns_confine_a_device_to_its_own_topics():
    rules = {topic: access for access, topic in p.device_acl_patterns("s")}
    assert rules[p.weight_topic("s", "%u").replace("/weight", "/+")] == "write"
    assert rules[p.command_filter("s", "%u")] == "read"
    assert all("%u" in topic for topic in rules)


def test_a_payload_naming_another_device_is_rejected():
    ok = p.decode(
        p.gate_topic("s", "gate-1"),
        b'{"seq": 1, "ts": 1, "device_id": "gate-1", '
        b'"direction": "entry", "session_token": "abcd"}',
    )
    assert ok.device_id == "gate-1"
    with pytest.raises(p.DecodeError, match="payload says device 'gate-2'"):
        p.decode(
            p.gate_topic("s", "gate-1"),
            b'{"seq": 1, "ts": 1, "device_id": "gate-2", '
            b'"direction": "entry", "session_token": "abcd"}',
        )
