"""Decode, check and route every inbound message to exactly one handler.

Nothing drops silently: a message that cannot be decoded, comes from an
unknown device or another store, or makes its handler fail is written to the
dead-letter table with the reason, and counted.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping

from devices.protocol import INBOUND, DecodeError, Inbound, MessageKind, decode, is_gateway_topic
from edge.ingest.dedupe import SeqTracker, SeqVerdict
from edge.store.repo import Store

log = logging.getLogger(__name__)

Handler = Callable[[Inbound], None]


class MissingHandlerError(RuntimeError):
    pass


class Rejected(ValueError):
    """Raised by a handler for a well-formed message that this store cannot accept."""


class Dispatcher:
    def __init__(
        self,
        store_id: str,
        known_devices: Mapping[str, str],
        handlers: Mapping[MessageKind, Handler],
        store: Store,
        seq: SeqTracker | None = None,
        on_accepted: Handler | None = None,
    ) -> None:
        missing = set(INBOUND) - set(handlers)
        if missing:
            names = ", ".join(sorted(k.value for k in missing))
            raise MissingHandlerError(f"no handler for inbound message kinds: {names}")
        self.store_id = store_id
        self._on_accepted = on_accepted
        self.known_devices = dict(known_devices)  # device_id -> device type
        self.handlers = dict(handlers)
        self.store = store
        self.seq = seq or SeqTracker()
        self.counts: Counter[str] = Counter()

    def dispatch(self, topic: str, payload: bytes) -> bool:
        """Handle one message; False when it went to the dead letters or was a duplicate."""
        if is_gateway_topic(topic):
            self.counts["own"] += 1  # our own state and receipts echo back: not device data
            return False
        self.counts["received"] += 1
        try:
            inbound = decode(topic, payload)
        except DecodeError as exc:
            return self._reject(topic, payload, exc.reason)
        if inbound.store_id != self.store_id:
            return self._reject(topic, payload, f"store {inbound.store_id!r} is not this store")
        if inbound.device_id not in self.known_devices:
            return self._reject(topic, payload, f"unknown device {inbound.device_id!r}")
        msg = inbound.message
        if inbound.kind is MessageKind.BIRTH:
            self.seq.restart(inbound.device_id)
        # A state message may be the last will, whose seq was fixed when the device
        # connected, long before its latest seq; and applying a state twice is harmless.
        # Its seq is still recorded, so that it does not count as a gap.
        verdict = self.seq.check(inbound.device_id, msg.seq, msg.ts)
        if verdict is SeqVerdict.DUPLICATE and inbound.kind is not MessageKind.STATE:
            self.counts["duplicates"] += 1
            return False
        try:
            self.handlers[inbound.kind](inbound)
        except Rejected as exc:
            return self._reject(topic, payload, f"rejected: {exc}")
        except Exception as exc:
            log.exception("handler for %s failed on %s", inbound.kind.value, topic)
            return self._reject(topic, payload, f"handler error: {type(exc).__name__}: {exc}")
        self.counts[inbound.kind.value] += 1
        if self._on_accepted is not None:
            self._on_accepted(inbound)
        return True

    def _reject(self, topic: str, payload: bytes, reason: str) -> bool:
        self.counts["dead_letters"] += 1
        log.warning("dead letter on %s: %s", topic, reason)
        self.store.dead_letter(topic, payload, reason, int(time.time() * 1000))
        return False
