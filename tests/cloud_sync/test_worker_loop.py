"""An HQ worker thread survives a round that fails unexpectedly (a bug in the gateway)."""

from __future__ import annotations

import threading

import pytest

from cloud_sync.downsync import Fetcher, FetcherConfig
from cloud_sync.wire import SyncDocument
from tests.cloud_sync.helpers import free_port


class FlakyApplier:
    """Raises on its first call, as a broken database would; fine afterwards."""

    def __init__(self) -> None:
        self.calls = 0
        self.asked_again = threading.Event()

    def seen_versions(self) -> dict[str, int]:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("database is locked")
        self.asked_again.set()
        return {}

    def apply(self, document: SyncDocument) -> None:  # pragma: no cover - HQ is not there
        raise AssertionError("nothing to apply")


@pytest.mark.allow_error_logs
@pytest.mark.timeout(30)
def test_the_fetcher_keeps_fetching_after_an_unexpected_failure(caplog):
    applier = FlakyApplier()
    nobody = f"http://127.0.0.1:{free_port()}"  # closed: a transient failure after the bug
    fetcher = Fetcher(
        applier,
        FetcherConfig(
            hq_url=nobody,
            store_id="s1",
            api_key="k",
            poll_s=0.05,
            backoff_base_s=0.01,
            backoff_max_s=0.05,
            request_timeout_s=1.0,
        ),
    )
    fetcher.start()
    try:
        assert applier.asked_again.wait(20), "the fetcher thread died with the failure"
    finally:
        fetcher.stop()
    assert applier.calls >= 2
    assert "hq fetcher: unexpected failure" in caplog.text
    assert "database is locked" in caplog.text
