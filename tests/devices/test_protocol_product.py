"""``event/product``: a product camera's scores for a grab it saw."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devices import protocol as p


def _decode(**body: Any) -> p.Inbound:
    payload = {"seq": 1, "ts": 5, "shelf_id": "shelf-1", "scores": {"100": 0.7}, **body}
    return p.decode(p.product_topic("s", "cam-1"), json.dumps(payload).encode())


def test_topic_and_decoding():
    assert p.product_topic("s1", "cam-1") == "storeedge/v1/s1/cam-1/event/product"
    inbound = _decode(plates=[2, 3], scores={"100": 0.7, "200": 0.25}, session_token="tok-1")
    assert inbound.kind is p.MessageKind.PRODUCT
    msg = inbound.message
    assert isinstance(msg, p.ProductSeen)
    assert msg.shelf_id == "shelf-1"
    assert msg.plates == [2, 3]
    assert msg.scores == {"100": 0.7, "200": 0.25}
    assert msg.session_token == "tok-1"
    assert _decode(firmware_note="x").message.plates is None  # plates optional, extras ignored


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"scores": {}}, "scores"),
        ({"scores": {str(i): 0.01 for i in range(p.MAX_PRODUCT_SCORES + 1)}}, "at most 32"),
        ({"scores": {"100": 0.8, "200": 0.8}}, "add up to at most 1"),
        ({"scores": {"100": 1.5}}, "scores.100"),
        ({"scores": {"bad barcode": 0.5}}, "scores"),
        ({"plates": [64]}, "plates.0"),
        ({"shelf_id": "../x"}, "shelf_id"),
    ],
)
def test_bad_views_are_rejected_with_a_reason(body, reason):
    with pytest.raises(p.DecodeError) as info:
        _decode(**body)
    assert reason in info.value.reason
