"""The gateway's link to HQ: the outbox sender, on its own SQLite connection.

The worker writes outbox rows in the same transaction as receipts and device
state changes; this sender reads them from a second connection (WAL lets it
read beside the writer) and marks them sent once HQ acknowledged their ids.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable

from cloud_sync.sender import Sender, SenderConfig
from cloud_sync.wire import Backlog, GatewayStatus
from edge.config import GatewayConfig
from edge.store.repo import Store

log = logging.getLogger(__name__)


def outbox_budget_bytes(config: GatewayConfig) -> int:
    return int(config.hq.outbox_budget_mb * 2**20)


def _version() -> str:
    try:
        return importlib.metadata.version("storeedge")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class HqLink:
    """Ships the outbox to HQ in a background thread; ``None`` when HQ is not configured."""

    def __init__(self, config: GatewayConfig) -> None:
        hq = config.hq
        if hq.url is None or hq.api_key is None:
            raise ValueError("hq.url and hq.api_key (STOREEDGE_HQ_STORE_KEY) are both needed")
        self.store = Store.open(config.database.path)
        self.store.set_outbox_budget(outbox_budget_bytes(config))
        self.sender = Sender(
            self.store,
            SenderConfig(
                hq_url=hq.url,
                store_id=config.store_id,
                api_key=hq.api_key,
                ca_file=hq.ca_file,
                heartbeat_s=hq.heartbeat_s,
                batch_max_age_s=hq.batch_max_age_s,
            ),
            heartbeat_info=self._status,
        )
        #: The versions of HQ's documents that run (set by the down-sync).
        self.versions: Callable[[], dict[str, str]] = dict

    @classmethod
    def from_config(cls, config: GatewayConfig) -> HqLink | None:
        if config.hq.url is None:
            return None
        return cls(config)

    def _status(self) -> GatewayStatus:
        with self.store.reading():
            devices = self.store.device_state_counts()
        return GatewayStatus(versions={"gateway": _version(), **self.versions()}, devices=devices)

    def start(self) -> None:
        self.sender.start()
        log.info("syncing to HQ at %s", self.sender.config.hq_url)

    def notify(self) -> None:
        self.sender.notify()

    def backlog(self) -> Backlog:
        return self.store.outbox_backlog()

    def drain(self, timeout_s: float) -> bool:
        """Ship everything unsent now; True when the outbox emptied within the time."""
        return self.sender.wait_drained(timeout_s)

    def stop(self) -> None:
        self.sender.stop()
        self.store.close()
