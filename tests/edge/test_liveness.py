from edge.health import Liveness


def test_a_device_that_reports_rarely_is_given_its_own_silence_limit():
    changes: list[tuple[str, str]] = []
    live = Liveness(30_000, lambda d, s, _r, _t: changes.append((d, s)), missed_heartbeats=3)
    live.seen("esl-1", 0)
    live.seen("gate-1", 0)
    live.expect_every("esl-1", 60_000)  # a label that reports once a minute
    assert live.limit_ms("esl-1") == 180_000
    assert live.limit_ms("gate-1") == 30_000
    assert live.check(31_000) == ["gate-1"]
    assert live.check(179_000) == []
    assert live.check(181_000) == ["esl-1"]
    assert changes[-2:] == [("gate-1", "offline"), ("esl-1", "offline")]


def test_a_short_heartbeat_never_shortens_the_configured_limit():
    live = Liveness(30_000, lambda *_: None, missed_heartbeats=3)
    live.expect_every("shelf-1", 1_000)
    assert live.limit_ms("shelf-1") == 30_000
