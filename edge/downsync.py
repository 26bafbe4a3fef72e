"""Down-sync on the gateway: apply what HQ publishes, or refuse it, and say which.

``cloud_sync.downsync.Fetcher`` asks HQ for documents newer than those this
gateway has seen and hands each one to :meth:`DownSync.apply` (on the fetcher's
thread).  Every change is made on the gateway's worker (``Gateway.call``), and
every outcome is written with its ``sync_report`` outbox row in one transaction,
so HQ learns it even across an outage.

* **prices** ``{"prices": {barcode: price_minor}}``: every price and the version
  in ONE transaction, then each changed product's shelf labels get the new price
  through their twins (online labels at once, the others when they come back).
  A barcode the planogram does not know refuses the whole list.
* **config**: the live settings (``detector``, ``inference``, ``association``,
  ``devices``) as a partial override of the local configuration file.  It is
  validated as a whole ``GatewayConfig`` (strict: a typo is refused with the key
  named); a change to any other section is refused (they do not change while
  the gateway runs).  After applying it the gateway is on probation for
  ``hq.config_probation_s``: when it becomes unhealthy (``Gateway.health()`` not
  ok where it was ok, or more devices offline than before), the previous
  settings come back and HQ is told ``rolled_back`` with the reason.
* **planogram** (a whole ``devices.layout.Planogram``) and **catalog**
  ``{"products": [...]}`` (products added to or replacing the planogram's): the
  planogram they make together is validated (refused with the key named, or
  when a shelf label shows a product it lacks) and then applied live, in one
  worker step, to everything that holds it (``Gateway.apply_planogram``): the
  checkout engine (shelf detectors, live planogram, association), the price
  book and shelf labels, the restock lanes, HQ's stock names, the shopper
  guidance and the known devices; it is recorded as the running one in the
  same step, so a restart starts with it.  Shelves it keeps as they are keep
  their detectors' state; a pick after it is inferred with the new weights and
  receipted with the new names; carts keep their lines.  A planogram that
  removes a shelf, or changes its plate count, while that shelf has a change in
  progress waits until the shelf is still (up to ``quiet_wait_s``); past that it
  is *deferred*: nothing is recorded, the fetcher asks for it again at its next
  poll, and the heartbeat's versions (what runs) show HQ it is still pending.

The versions that run (and their documents) are kept in SQLite; at start
:meth:`DownSync.restore` gives the gateway the planogram and configuration that
HQ's documents make.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from cloud_sync.downsync import Deferred, Fetcher, FetcherConfig
from cloud_sync.wire import PricesBody, SyncDocument
from devices.layout import Planogram
from edge.config import GatewayConfig

if TYPE_CHECKING:
    from edge.app import Gateway

log = logging.getLogger(__name__)

#: Config sections that change while the gateway runs.
LIVE_SECTIONS = ("detector", "inference", "association", "devices")
#: A probation check this many times in a row unhealthy rolls the configuration back.
BAD_CHECKS = 2
#: The reason reported with a planogram or catalog that was applied.
APPLIED_LIVE = "applied live"
#: How long a planogram waits (by default) for the shelves it changes to be still.
QUIET_WAIT_S = 10.0
QUIET_POLL_S = 0.1


class Refused(ValueError):
    """A document that cannot be applied; the message says why (naming the key)."""


@dataclass(frozen=True, slots=True)
class Probe:
    """The gateway's health as the probation sees it."""

    ok: bool
    offline: int
    detail: str = ""


def _errors(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for err in exc.errors()[:10]:
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{prefix}{key}: {err['msg']}")
    return "; ".join(parts)


def _merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def merge_config(base: GatewayConfig, override: Mapping[str, Any]) -> GatewayConfig:
    """``base`` with HQ's ``override``, validated whole; raises :class:`Refused`."""
    try:
        merged = GatewayConfig.model_validate(_merge(base.model_dump(), override))
    except ValidationError as exc:
        raise Refused(_errors(exc)) from None
    fixed = [
        key
        for key in sorted(override)
        if key not in LIVE_SECTIONS and getattr(merged, key) != getattr(base, key)
    ]
    if fixed:
        raise Refused(
            "; ".join(
                f"{key}: cannot be changed from HQ while the gateway runs"
                f" (live: {', '.join(LIVE_SECTIONS)})"
                for key in fixed
            )
        )
    return merged


def compose_planogram(
    base: Mapping[str, Any] | Planogram, catalog: Mapping[str, Any] | None
) -> Planogram:
    """The planogram ``base`` with the catalog's products added or replaced (by
    barcode); raises :class:`Refused` naming what is wrong."""
    data = base.model_dump() if isinstance(base, Planogram) else dict(base)
    if catalog is not None:
        products = {p.get("barcode"): p for p in data.get("products", []) if isinstance(p, dict)}
        for product in catalog.get("products", []):
            if not isinstance(product, Mapping):
                raise Refused("catalog.products: every product must be an object")
            barcode = product.get("barcode")
            products[barcode] = {**products.get(barcode, {}), **product}
        data["products"] = list(products.values())
    try:
        return Planogram.model_validate(data)
    except ValidationError as exc:
        raise Refused(_errors(exc, "planogram.")) from None


class DownSync:
    """One per gateway; built before the gateway's components (see :meth:`restore`)."""

    def __init__(self, gateway: Gateway, base_config: GatewayConfig) -> None:
        self.gw = gateway
        self.base_config = base_config  # the local file (and environment)
        self.local_planogram: Planogram | None = None
        #: Versions from HQ in effect in this process (the heartbeat reports them).
        self.active: dict[str, int] = {}
        self.probation_s = base_config.hq.config_probation_s
        self.check_every_s = 1.0
        #: How long a planogram waits for the shelves it changes to be still.
        self.quiet_wait_s = QUIET_WAIT_S
        #: How healthy the gateway is now; tests put their own here.
        self.probe: Callable[[], Probe] = self._probe
        self.fetcher: Fetcher | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------------ life cycle

    def restore(self, planogram: Planogram) -> tuple[Planogram, GatewayConfig]:
        """The planogram and configuration to start with: the local ones with what
        HQ sent down and this gateway accepted.  A stored document that no longer
        fits (the local files changed) is skipped with a warning."""
        self.local_planogram = planogram
        running = self.gw.store.sync_running()
        config = self.base_config
        if "prices" in running:
            self.active["prices"] = running["prices"][0]
        if "planogram" in running or "catalog" in running:
            base: Mapping[str, Any] | Planogram = running.get("planogram", (0, planogram))[1]
            catalog = running["catalog"][1] if "catalog" in running else None
            try:
                planogram = compose_planogram(base, catalog)
            except Refused as exc:
                log.warning("down-sync: the stored planogram does not load (%s); local one", exc)
            else:
                for kind in ("planogram", "catalog"):
                    if kind in running:
                        self.active[kind] = running[kind][0]
        if "config" in running:
            try:
                config = merge_config(self.base_config, running["config"][1])
            except Refused as exc:
                log.warning("down-sync: the stored configuration does not apply (%s)", exc)
            else:
                self.active["config"] = running["config"][0]
        return planogram, config

    def start(self) -> None:
        """Fetch from HQ in the background (when HQ is configured)."""
        hq = self.gw.config.hq
        if self.gw.hq is None or hq.url is None or hq.api_key is None:
            return
        self.gw.hq.versions = self.versions
        self._stop.clear()
        self.fetcher = Fetcher(
            self,
            FetcherConfig(
                hq_url=hq.url,
                store_id=self.gw.config.store_id,
                api_key=hq.api_key,
                ca_file=hq.ca_file,
                poll_s=hq.sync_poll_s,
            ),
        )
        self.fetcher.start()

    def stop(self) -> None:
        self._stop.set()
        if self.fetcher is not None:
            self.fetcher.stop()
            self.fetcher = None

    def versions(self) -> dict[str, str]:
        """What runs, for the heartbeat."""
        active = dict(self.active)  # one C-level copy: the fetcher thread writes it
        return {kind: str(version) for kind, version in sorted(active.items())}

    # ------------------------------------------------------------------ the Applier

    def seen_versions(self) -> dict[str, int]:
        return self.gw.call(self.gw.store.sync_seen)

    def apply(self, document: SyncDocument) -> None:
        """Apply or refuse ``document``; the outcome is recorded and reported."""
        try:
            if document.kind == "prices":
                self._apply_prices(document)
            elif document.kind == "config":
                self._apply_config(document)
            else:
                self._apply_planogram(document)
        except Refused as exc:
            self._record(document, "refused", str(exc))
            log.warning(
                "down-sync: %s version %d refused: %s", document.kind, document.version, exc
            )

    def _now(self) -> int:
        return self.gw.engine.clock_ms()

    def _record(self, document: SyncDocument, status: str, reason: str) -> None:
        store = self.gw.store
        self.gw.call(
            lambda: store.record_sync(document.kind, document.version, status, reason, self._now())
        )

    # ------------------------------------------------------------------ prices

    def _apply_prices(self, document: SyncDocument) -> None:
        try:
            prices = PricesBody.model_validate(document.body).prices
        except ValidationError as exc:
            raise Refused(_errors(exc)) from None
        gw = self.gw

        def run() -> int:
            known = {p.barcode for p in gw.planogram.products}
            unknown = sorted(set(prices) - known)
            if unknown:
                raise Refused(f"prices: products not in the planogram: {', '.join(unknown)}")
            changes = {b: (new, gw.prices.price_minor(b)) for b, new in prices.items()}
            gw.store.apply_prices(document.version, changes, document.body, self._now())
            changed = [b for b, (new, old) in changes.items() if new != old]
            for barcode in changed:  # after the commit: the labels follow (mended at start)
                for device_id in gw.prices.push_to_labels(barcode):
                    gw.reconcile_if_online(device_id)
            return len(changed)

        changed = gw.call(run)
        self.active["prices"] = document.version
        log.info("down-sync: prices version %d applied (%d changed)", document.version, changed)

    # ------------------------------------------------------------------ planogram, catalog

    def _apply_planogram(self, document: SyncDocument) -> None:
        gw = self.gw
        running = gw.call(gw.store.sync_running)
        if document.kind == "planogram":
            base: Mapping[str, Any] | Planogram = document.body
            catalog = running["catalog"][1] if "catalog" in running else None
        else:
            local = self.local_planogram or gw.planogram
            base = running["planogram"][1] if "planogram" in running else local
            catalog = document.body
        planogram = compose_planogram(base, catalog)
        barcodes = {p.barcode for p in planogram.products}
        missing = sorted({e.barcode for e in gw.config.esls} - barcodes)
        if missing:
            raise Refused(f"esls: the shelf labels show products it lacks: {', '.join(missing)}")

        def persist() -> None:
            gw.store.record_sync(
                document.kind,
                document.version,
                "applied",
                APPLIED_LIVE,
                self._now(),
                (document.version, document.body),
            )

        def run() -> str | None:
            busy = gw.planogram_busy(planogram)
            if busy is None:
                try:
                    gw.apply_planogram(planogram, persist)
                except Refused:
                    raise
                except ValueError as exc:  # a part refused it; nothing changed
                    raise Refused(str(exc)) from None
            return busy

        deadline = time.monotonic() + self.quiet_wait_s
        while (busy := gw.call(run)) is not None:
            left = deadline - time.monotonic()
            if left <= 0 or self._stop.wait(min(QUIET_POLL_S, left)):
                log.info(
                    "down-sync: %s version %d waits (%s)", document.kind, document.version, busy
                )
                raise Deferred(busy)
        self.active[document.kind] = document.version
        log.info("down-sync: %s version %d applied live", document.kind, document.version)

    # ------------------------------------------------------------------ config

    def _apply_config(self, document: SyncDocument) -> None:
        new = merge_config(self.base_config, document.body)
        gw = self.gw
        before = self.probe()
        previous = gw.config
        running = gw.call(gw.store.sync_running).get("config")
        reason = (
            f"applied live; on probation for {self.probation_s:g} s"
            if self.probation_s > 0
            else "applied live"
        )

        def run() -> None:
            self.apply_live(new)
            try:
                gw.store.record_sync(
                    "config",
                    document.version,
                    "applied",
                    reason,
                    self._now(),
                    (document.version, document.body),
                )
            except BaseException:
                self.apply_live(previous)
                raise

        gw.call(run)
        previous_version = self.active.get("config")
        self.active["config"] = document.version
        log.info("down-sync: config version %d applied", document.version)
        why = self._probation(before)
        if why is None:
            return
        restore = (None, None) if running is None else running

        def back() -> None:
            self.apply_live(previous)
            gw.store.record_sync(
                "config", document.version, "rolled_back", why, self._now(), restore
            )

        gw.call(back)
        if previous_version is None:
            self.active.pop("config", None)
        else:
            self.active["config"] = previous_version
        log.warning("down-sync: config version %d rolled back: %s", document.version, why)

    def apply_live(self, config: GatewayConfig) -> None:
        """Put ``config``'s live settings to work (on the worker)."""
        gw = self.gw
        gw.engine.reconfigure(config.detector, config.inference, config.association)
        gw.liveness.set_offline_after(
            round(config.devices.offline_after_s * 1000), config.devices.missed_heartbeats
        )
        gw.config = config

    def _probation(self, before: Probe) -> str | None:
        """Watch the gateway for ``probation_s``; the reason it went bad, or None."""
        deadline = time.monotonic() + self.probation_s
        bad = 0
        while time.monotonic() < deadline:
            if self._stop.wait(min(self.check_every_s, max(0.0, deadline - time.monotonic()))):
                return None  # shutting down: no verdict, the settings stay
            now = self.probe()
            why = None
            if before.ok and not now.ok:
                why = f"the gateway became unhealthy ({now.detail or 'health not ok'})"
            elif now.offline > before.offline:
                why = f"{now.offline - before.offline} more device(s) offline than before"
            bad = bad + 1 if why else 0
            if why is not None and bad >= BAD_CHECKS:
                return why
        return None

    def _probe(self) -> Probe:
        health = self.gw.health()
        offline = self.gw.call(self.gw.store.device_state_counts).get("offline", 0)
        detail = ", ".join(k for k, v in health.items() if v is False)
        return Probe(bool(health.get("ok")), offline, detail)
