"""Check-in: a signed, short-lived, single-use token that the entry gate turns into a
session; unsigned, forged, expired, foreign and reused tokens are refused."""

from __future__ import annotations

import pytest

from edge.shoppers.tokens import MAC_BYTES, TokenInvalid, TokenKind, TokenSigner
from tests.edge.helpers import Bench
from tests.edge.test_engine import B, _planogram

SECRET = "check-in-secret-of-32-bytes-long"


@pytest.fixture
def bench(tmp_path):
    b = Bench(tmp_path, _planogram(), shoppers={"secret": SECRET, "checkin_ttl_s": 60})
    b.tick(1)
    yield b
    b.store.close()


def _refusals(bench: Bench) -> list[str]:
    return [d["reason"] for d in bench.store.dead_letters()]


def test_signer_round_trip_and_refusals() -> None:
    signer = TokenSigner(SECRET)
    token = signer.sign(TokenKind.CHECKIN, {"exp": 2_000, "n": "abc"})
    assert signer.verify(TokenKind.CHECKIN, token, now_ms=1_999)["n"] == "abc"
    assert len(token) <= 128  # fits a gate event's session_token
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert len(token.split(".")[2]) == (MAC_BYTES * 4 + 2) // 3
    cases = {
        "token expired": lambda: signer.verify(TokenKind.CHECKIN, token, now_ms=2_000),
        "bad signature": lambda: TokenSigner("x" * 32).verify(TokenKind.CHECKIN, token, now_ms=0),
        "not a signed token": lambda: signer.verify(TokenKind.CHECKIN, "tok-1", now_ms=0),
        "a checkin token, not a shopper one": lambda: signer.verify(
            TokenKind.SHOPPER, token, now_ms=0
        ),
    }
    for reason, check in cases.items():
        with pytest.raises(TokenInvalid, match=reason):
            check()
    head, body, mac = token.split(".")
    tampered = f"{head}.{body[:-2]}AA.{mac}"
    with pytest.raises(TokenInvalid):
        signer.verify(TokenKind.CHECKIN, tampered, now_ms=0)
    with pytest.raises(ValueError, match="16 bytes"):
        TokenSigner("short")


def test_a_valid_check_in_opens_a_session_of_that_shopper(bench) -> None:
    shoppers = bench.gw.shoppers
    issued = shoppers.issue_checkin("shp_ana")
    token = issued["session_token"]
    assert issued["expires_ms"] == bench.now + 60_000
    bench.gate("entry", token)
    assert token in bench.gw.engine.open_sessions
    assert bench.store.session_shopper(token) == "shp_ana"
    assert bench.store.checkin(token)["used_ms"] is not None
    bench.change("shelf-1", 1, -600)
    bench.gate("exit", token)
    bench.tick(2)
    [receipt] = bench.receipts
    assert receipt.session_token == token
    assert [(ln.barcode, ln.quantity) for ln in receipt.lines] == [(B, 1)]
    assert bench.store.shopper_receipt_ids("shp_ana") == [receipt.receipt_id]
    assert _refusals(bench) == []


def test_unsigned_forged_expired_and_reused_tokens_are_refused(bench) -> None:
    shoppers = bench.gw.shoppers
    used = shoppers.issue_checkin("shp_bo")["session_token"]
    bench.gate("entry", used)
    expired = shoppers.issue_checkin("shp_cy")["session_token"]
    foreign = TokenSigner("another-store-secret-32-bytes-xx").sign(
        TokenKind.CHECKIN, {"exp": bench.now + 60_000, "n": "x"}
    )
    # signed with our secret but never issued (e.g. a token made for another database)
    unissued = shoppers.signer.sign(TokenKind.CHECKIN, {"exp": bench.now + 60_000, "n": "y"})
    bench.gate("entry", "tok-plain")
    bench.gate("entry", foreign)
    bench.gate("entry", unissued)
    bench.gate("entry", used)  # a second time through the entry gate
    bench.now += 61_000
    bench.gate("entry", expired)
    assert _refusals(bench)[::-1] == [
        "rejected: check-in refused: not a signed token",
        "rejected: check-in refused: bad signature",
        "rejected: check-in refused: not issued by this store",
        "rejected: check-in refused: already used",
        "rejected: check-in refused: token expired",
    ]
    assert bench.gw.engine.open_sessions == {used}
    events = [e["body"]["reason"] for e in bench.store.events("checkin_refused")]
    assert len(events) == 5
    # the exit gate does not need a fresh token: the session's own closes it
    bench.gate("exit", used)
    bench.tick(2)
    assert [r.session_token for r in bench.receipts] == [used]


def test_replays_may_turn_verification_off(tmp_path) -> None:
    bench = Bench(tmp_path, _planogram(), shoppers={"verify_checkin": False})
    bench.tick(1)
    bench.gate("entry", "case-7-shopper-1")
    assert bench.gw.engine.open_sessions == {"case-7-shopper-1"}
    bench.store.close()
