"""Store-and-forward: ship the gateway's outbox to HQ, batch by batch.

The sender holds no SQL: it works against the :class:`Outbox` protocol (the
gateway's ``Store`` implements it).  One thread:

* reads the oldest unsent rows in outbox order (so order is kept per stream),
* ships them as one gzip-compressed batch when the batch is full or its oldest
  row has waited ``batch_max_age_s``,
* marks rows sent only with the ids HQ acknowledged (HQ stores each event id
  once, so a batch sent twice after a crash or a lost answer is harmless),
* backs off exponentially with jitter while HQ cannot be reached,
* sends a heartbeat every ``heartbeat_s``: backlog, versions, devices by state,
* drops sent rows after ``keep_sent_s`` and keeps the outbox under its budget.

Use::

    sender = Sender(store, SenderConfig(hq_url=..., store_id=..., api_key=...), status_fn)
    sender.start()
    ...
    sender.notify()     # optional: new rows were written, look now
    sender.stop()
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import Field

from cloud_sync.client import (
    BatchTooLarge,
    HqConnection,
    HqError,
    HqWorker,
    RefusedError,
    TransientError,
)
from cloud_sync.wire import Backlog, GatewayHeartbeat, GatewayStatus, IngestBatch, OutboxEvent

log = logging.getLogger(__name__)


class Outbox(Protocol):
    """What the sender needs from the gateway's outbox (``edge.store`` implements it)."""

    def outbox_pending(self, limit: int, max_bytes: int) -> Sequence[OutboxEvent]:
        """The oldest unsent rows, in outbox order."""
        ...

    def outbox_mark_sent(self, event_ids: Sequence[str], sent_ms: int) -> int:
        """Mark these rows sent (HQ acknowledged them)."""
        ...

    def outbox_backlog(self, now_ms: int | None = None) -> Backlog: ...

    def outbox_maintain(self, keep_sent_ms: int, now_ms: int | None = None) -> int:
        """Drop old sent rows and enforce the disk budget."""
        ...


class SenderConfig(HqConnection):
    batch_max_rows: int = Field(default=500, ge=1, le=10_000)
    batch_max_bytes: int = Field(default=1_000_000, ge=1024)
    batch_max_age_s: float = Field(default=1.0, ge=0, description="ship a partial batch then")
    poll_s: float = Field(default=0.5, gt=0, description="how often the outbox is looked at")
    heartbeat_s: float = Field(default=15.0, gt=0)
    backoff_base_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=60.0, gt=0)
    keep_sent_s: float = Field(default=3600.0, ge=0, description="sent rows kept this long")
    maintain_s: float = Field(default=30.0, gt=0, description="how often to prune and evict")


@dataclass
class SenderStats:
    batches: int = 0
    events_acked: int = 0
    duplicates: int = 0
    rejected: int = 0
    heartbeats: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    last_ack_ms: int | None = None


def _now_ms() -> int:
    return int(time.time() * 1000)


class Sender(HqWorker):
    _what = "sender"

    def __init__(
        self,
        outbox: Outbox,
        config: SenderConfig,
        heartbeat_info: Callable[[], GatewayStatus] | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(config, config.backoff_base_s, config.backoff_max_s, rng)
        self.config = config
        self.outbox = outbox
        self._info = heartbeat_info or GatewayStatus
        self._rows_limit = config.batch_max_rows
        self._flush = False
        self._ensure_client()
        self._retry_at = 0.0  # monotonic: no request to HQ before this
        self._next_heartbeat = 0.0
        self._next_maintain = 0.0
        self.stats = SenderStats()

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Ship in a background thread (``step()`` drives it by hand instead);
        ``stop()`` leaves unsent rows in the outbox."""
        if self._thread is None:
            self._ensure_client()
        super().start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def notify(self) -> None:
        """New rows were written: look at the outbox now (still batching by age)."""
        self._wake.set()

    def flush(self) -> None:
        """Ship what is pending now, without waiting for the batch to fill or age."""
        self._flush = True
        self._retry_at = 0.0
        self._wake.set()

    def wait_drained(self, timeout: float) -> bool:
        """Flush and wait until the outbox has no unsent rows; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.outbox.outbox_backlog().rows == 0:
                return True
            self._flush = True
            self._wake.set()
            self._stop.wait(0.05)
        return self.outbox.outbox_backlog().rows == 0

    # ------------------------------------------------------------------ the loop

    def step(self) -> float:
        """One round: maintenance, heartbeat, at most one batch.  Returns how long
        to wait before the next round."""
        self._ensure_client()
        now = time.monotonic()
        if now >= self._next_maintain:
            self.outbox.outbox_maintain(round(self.config.keep_sent_s * 1000))
            self._next_maintain = now + self.config.maintain_s
        if now < self._retry_at:
            return min(self._retry_at - now, self.config.poll_s)
        if now >= self._next_heartbeat:
            if not self._call(self._send_heartbeat):
                return 0.0
            self._next_heartbeat = now + self.config.heartbeat_s
        batch = self.outbox.outbox_pending(self._rows_limit, self.config.batch_max_bytes)
        if not batch:
            self._flush = False
            return self.config.poll_s
        age_s = max(0.0, (_now_ms() - batch[0].created_ms) / 1000)
        full = len(batch) >= self._rows_limit
        if not (full or self._flush or age_s >= self.config.batch_max_age_s):
            return min(self.config.poll_s, self.config.batch_max_age_s - age_s)
        # After a success more may be waiting; after a failure the retry time gates.
        self._call(lambda: self._send_batch(batch))
        return 0.0

    def _call(self, action: Callable[[], None]) -> bool:
        """Run one request to HQ; on failure schedule the retry.  True on success."""
        try:
            action()
        except BatchTooLarge as exc:
            self._rows_limit = max(1, self._rows_limit // 2)
            log.warning("hq sender: %s; batches now at most %d rows", exc, self._rows_limit)
            self._failed(str(exc), 0.0)
            return False
        except TransientError as exc:
            delay = max(self._backoff.next_delay(), exc.retry_after_s)
            if self.stats.consecutive_failures == 0:
                log.warning("hq sender: HQ unreachable (%s); retrying with backoff", exc)
            else:
                log.info("hq sender: still failing (%s); next try in %.2f s", exc, delay)
            self._failed(str(exc), delay)
            return False
        except RefusedError as exc:
            delay = self.config.backoff_max_s
            if not self._refused_logged:
                log.error(
                    "hq sender: HQ refused the store's requests (%s); check the store id, API"
                    " key and versions; retrying every %.0f s",
                    exc,
                    delay,
                )
                self._refused_logged = True
            self._failed(str(exc), delay)
            return False
        except HqError as exc:  # pragma: no cover - every HqError is one of the above
            self._failed(str(exc), self._backoff.next_delay())
            return False
        if self.stats.consecutive_failures:
            log.warning(
                "hq sender: HQ reachable again after %d failed tries",
                self.stats.consecutive_failures,
            )
        self.stats.consecutive_failures = 0
        self._refused_logged = False
        self._backoff.reset()
        return True

    def _failed(self, error: str, delay: float) -> None:
        self.stats.failures += 1
        self.stats.consecutive_failures += 1
        self.stats.last_error = error
        self._retry_at = time.monotonic() + delay

    def _send_batch(self, batch: Sequence[OutboxEvent]) -> None:
        assert self._client is not None
        request = IngestBatch(
            store_id=self.config.store_id, batch_id=uuid.uuid4().hex, events=list(batch)
        )
        ack = self._client.ingest(request)
        sent = {event.event_id for event in batch}
        acked = [event_id for event_id in ack.acked if event_id in sent]
        now_ms = _now_ms()
        self.outbox.outbox_mark_sent(acked, now_ms)
        for rejected in ack.rejected:
            log.warning("hq sender: HQ set event %s aside: %s", rejected.event_id, rejected.reason)
        if len(acked) < len(sent):
            log.warning(
                "hq sender: HQ acknowledged %d of %d events; the rest go again",
                len(acked),
                len(sent),
            )
        self.stats.batches += 1
        self.stats.events_acked += len(acked)
        self.stats.duplicates += ack.duplicates
        self.stats.rejected += len(ack.rejected)
        self.stats.last_ack_ms = now_ms
        if len(acked) == len(sent):
            self._rows_limit = min(self.config.batch_max_rows, self._rows_limit * 2)

    def _send_heartbeat(self) -> None:
        assert self._client is not None
        try:
            status = self._info()
        except Exception:  # the gateway's status is a nicety; the heartbeat is not
            log.warning("hq sender: gateway status failed; heartbeat without it", exc_info=True)
            status = GatewayStatus()
        now_ms = _now_ms()
        heartbeat = GatewayHeartbeat(
            store_id=self.config.store_id,
            sent_ms=now_ms,
            versions=status.versions,
            devices=status.devices,
            backlog=self.outbox.outbox_backlog(now_ms),
        )
        self._client.heartbeat(heartbeat)
        self.stats.heartbeats += 1
