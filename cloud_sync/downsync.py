"""Down-sync: fetch the catalog, prices, planogram and configuration HQ published.

The fetcher holds no SQL and knows nothing of the gateway: it asks an
:class:`Applier` (the gateway implements it) which versions it has seen, asks HQ
for newer documents (``GET /api/v1/sync``, the store's key, the sender's client
and backoff), and hands each one to :meth:`Applier.apply`, in the order
catalog, planogram, prices, config.  The applier applies or refuses it and
records the outcome, which reaches HQ through the outbox; a document whose
outcome was recorded is not fetched again.

Use::

    fetcher = Fetcher(applier, FetcherConfig(hq_url=..., store_id=..., api_key=...))
    fetcher.start()
    ...
    fetcher.poke()      # look now (e.g. HQ said something changed)
    fetcher.stop()
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from typing import Protocol

from pydantic import Field

from cloud_sync.client import HqConnection, HqError, HqWorker, RefusedError, TransientError
from cloud_sync.wire import DOC_KINDS, SyncDocument

log = logging.getLogger(__name__)


class Deferred(Exception):
    """Raised by :meth:`Applier.apply` for a document it cannot apply yet (the store
    is busy where it changes things): nothing is recorded, the documents after it
    wait too (their order is kept), and it comes again at the next fetch."""


class Applier(Protocol):
    """What the fetcher needs from the gateway."""

    def seen_versions(self) -> dict[str, int]:
        """Per kind: the newest version applied, refused or rolled back."""
        ...

    def apply(self, document: SyncDocument) -> None:
        """Apply (or refuse) the document and record the outcome; may take a while
        (a configuration's probation).  Raises :class:`Deferred` to be asked again."""
        ...


class FetcherConfig(HqConnection):
    poll_s: float = Field(default=30.0, gt=0, description="how often HQ is asked")
    backoff_base_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=300.0, gt=0)


@dataclass
class FetcherStats:
    fetches: int = 0
    documents: int = 0
    failures: int = 0
    last_error: str | None = None


class Fetcher(HqWorker):
    _what = "fetcher"

    def __init__(
        self, applier: Applier, config: FetcherConfig, *, rng: random.Random | None = None
    ) -> None:
        super().__init__(config, config.backoff_base_s, config.backoff_max_s, rng)
        self.config = config
        self.applier = applier
        self._failed_versions: set[tuple[str, int]] = set()  # logged once each
        self.stats = FetcherStats()

    @property
    def stopping(self) -> threading.Event:
        """Set when the fetcher stops (an applier's long wait should end then)."""
        return self._stop

    def poke(self) -> None:
        """Ask HQ now instead of at the next poll."""
        self._wake.set()

    def step(self) -> float:
        """Fetch once and apply what came; returns the seconds until the next try."""
        client = self._ensure_client()
        try:
            changes = client.changes(self.applier.seen_versions())
        except TransientError as exc:
            return self._failed(exc, self._backoff.next_delay(), logging.INFO)
        except RefusedError as exc:
            level = logging.INFO if self._refused_logged else logging.ERROR
            self._refused_logged = True
            return self._failed(exc, self.config.backoff_max_s, level)
        except HqError as exc:  # pragma: no cover - every HqError is one of the above
            return self._failed(exc, self._backoff.next_delay(), logging.WARNING)
        self._backoff.reset()
        self._refused_logged = False
        self.stats.fetches += 1
        order = {kind: i for i, kind in enumerate(DOC_KINDS)}
        for document in sorted(changes.documents, key=lambda d: order[d.kind]):
            if self._stop.is_set():
                break
            self.stats.documents += 1
            log.info("down-sync: %s version %d from HQ", document.kind, document.version)
            try:
                self.applier.apply(document)
            except Deferred as exc:
                log.info(
                    "down-sync: %s version %d deferred (%s); asking again in %.1f s",
                    document.kind,
                    document.version,
                    exc,
                    self.config.poll_s,
                )
                break  # what follows waits for it
            except Exception:  # a bug in the gateway: keep fetching, say it once
                key = (document.kind, document.version)
                if key not in self._failed_versions:
                    self._failed_versions.add(key)
                    log.exception(
                        "down-sync: applying %s version %d failed; trying again later", *key
                    )
        return self.config.poll_s

    def _failed(self, exc: HqError, delay: float, level: int) -> float:
        self.stats.failures += 1
        self.stats.last_error = str(exc)
        log.log(level, "down-sync: asking HQ failed (%s); next try in %.1f s", exc, delay)
        return delay
