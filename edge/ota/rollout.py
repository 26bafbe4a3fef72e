"""Staged firmware rollouts: canaries first, health checks, automatic rollback.

A rollout offers one signed image to every device of a type.  A share of them
(``ota.canary_share``, at least one) are the *canaries*: they are updated first,
and the rest are offered the image only once every canary has been confirmed
healthy.  Any failure halts the rollout, with a reason that names the device
and the check it failed; devices not yet offered are never offered.

One device's way through an update (its state in the rollout)::

    pending -> offered -> installing -> booted -> verifying -> confirmed
                  \\           \\           \\          \\
                   failed / rolled_back (any check fails; the device is told to go back)

* ``offered``: the gateway sent the image (``ota`` command).
* ``installing``: the device verified it and writes it to its inactive slot.
* ``booted``: it came back (a birth) running the new version, on trial.
* ``verifying``: its new firmware heartbeats; the health window runs.
* ``confirmed``: it stayed online and heartbeating for ``health_window_s``; the
  gateway told it to keep the new slot and it said it did.

The health check: the device must come back running the new version within
``boot_timeout_s`` of taking the image, then never be silent for more than
``missed_heartbeats`` heartbeat intervals (its twin's ``heartbeat_s``) nor go
offline for ``health_window_s``.  Everything is kept in SQLite, so a gateway
restart picks a rollout up where it was (a device's heartbeat clock restarts
with the gateway).

Runs on the gateway's worker thread only (messages, the periodic tick and staff
actions all arrive there).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from devices.ota import (
    OTA_CHUNK,
    OTA_CONFIRM,
    OTA_OFFER,
    OTA_ROLLBACK,
    FirmwareManifest,
    ImageRejected,
    OtaDecision,
    OtaOffer,
    load_public_key,
    make_chunk,
    make_offer,
    verify_image,
)
from devices.protocol import DeviceType, OtaPhase, OtaStatus
from edge.config import OtaConfig
from edge.store.base import new_event_id
from edge.store.ota import ACTIVE_ROLLOUT, IN_FLIGHT
from edge.store.repo import Store

log = logging.getLogger(__name__)

#: (device_id, command name, args) -> command id; the gateway's send_command.
SendCommand = Callable[[str, str, dict[str, Any]], str]

#: (rollout, device row) pairs.
_Rows = list[tuple[dict[str, Any], dict[str, Any]]]

#: Heartbeat interval assumed for a device whose twin does not report one.
DEFAULT_HEARTBEAT_S = 5.0


class OtaError(Exception):
    """An OTA request that cannot be done; the message says why."""


class ImageRefused(OtaError):
    """An image whose manifest, signature or hash does not verify."""


class OtaConflict(OtaError):
    """The request clashes with what exists (a duplicate image, a running rollout)."""


class OtaNotConfigured(OtaError):
    """No trusted firmware key is configured."""


def load_trusted_key(config: OtaConfig) -> Ed25519PublicKey | None:
    """The configured firmware signing key, or None; ValueError names a bad one."""
    if config.trusted_public_key is not None:
        return load_public_key(config.trusted_public_key)
    path: Path | None = config.trusted_public_key_file
    if path is None:
        return None
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"ota.trusted_public_key_file {path}: {exc.strerror}") from None
    try:
        return load_public_key(text)
    except ValueError as exc:
        raise ValueError(f"ota.trusted_public_key_file {path}: {exc}") from None


class RolloutOrchestrator:
    def __init__(
        self,
        store: Store,
        config: OtaConfig,
        send: SendCommand,
        is_online: Callable[[str], bool],
        clock_ms: Callable[[], int],
    ) -> None:
        self.store = store
        self.config = config
        self.trusted_key = load_trusted_key(config)
        self._send = send
        self._is_online = is_online
        self._clock = clock_ms
        self._started_ms = clock_ms()
        #: (rollout, device) -> when the gateway last heard a heartbeat of the new firmware.
        self._heard: dict[tuple[str, str], int] = {}
        #: device -> rollouts it is pending in (active ones) or in the middle of;
        #: rebuilt from the store on first use after a state change (:meth:`_watching`).
        self._watch: dict[str, set[str]] = {}
        self._watch_stale = True
        #: The image last offered or sent in chunks: ((device type, version), offer, bytes).
        self._image_cache: tuple[tuple[str, str], OtaOffer, bytes] | None = None

    # ------------------------------------------------------------------ staff actions

    def register_image(self, manifest: dict[str, Any], image: bytes) -> dict[str, Any]:
        """Keep an image whose manifest the trusted key signed and whose bytes match it."""
        if self.trusted_key is None:
            raise OtaNotConfigured(
                "no trusted firmware key is configured (ota.trusted_public_key); "
                "no image can be accepted"
            )
        try:
            parsed = FirmwareManifest.model_validate(manifest)
        except ValidationError as exc:
            raise ImageRefused(f"invalid manifest: {_summarise(exc)}") from None
        if len(image) > self.config.max_image_bytes:
            raise ImageRefused(
                f"the image has {len(image)} bytes; this gateway takes at most "
                f"{self.config.max_image_bytes}"
            )
        try:
            verify_image(parsed, image, self.trusted_key)
        except ImageRejected as exc:
            raise ImageRefused(exc.reason) from None
        data = parsed.model_dump(mode="json")
        if not self.store.ota_add_image(data, image, self._clock()):
            raise OtaConflict(
                f"{parsed.device_type.value} firmware {parsed.version} is already registered"
            )
        log.info("firmware %s %s registered", parsed.device_type.value, parsed.version)
        return {k: data[k] for k in ("device_type", "version", "sha256", "size")}

    def create_rollout(
        self,
        device_type: str,
        version: str,
        *,
        canary_share: float | None = None,
        devices: list[str] | None = None,
        canary: list[str] | None = None,
    ) -> dict[str, Any]:
        """Start offering ``version`` to the devices of ``device_type`` (canaries first).

        ``devices`` limits the rollout to those; ``canary`` picks the canaries (else
        the first ``canary_share`` of them by id).  Devices already running the
        version are left out.
        """
        now = self._clock()
        kind = DeviceType(device_type).value
        if self.trusted_key is None:
            raise OtaNotConfigured("no trusted firmware key is configured (ota.trusted_public_key)")
        if self.store.ota_image(kind, version) is None:
            raise LookupError(f"no {kind} firmware {version} is registered")
        running = self.store.ota_active_rollout(kind)
        if running is not None:
            raise OtaConflict(f"rollout {running} of {kind} firmware is still running")
        share = self.config.canary_share if canary_share is None else canary_share
        if not 0 < share <= 1:
            raise ValueError("canary_share must be in (0, 1]")
        known = {d["device_id"]: d for d in self.store.devices() if d["device_type"] == kind}
        wanted = sorted(known) if devices is None else sorted(set(devices))
        unknown = [d for d in [*wanted, *(canary or [])] if d not in known]
        if unknown:
            raise LookupError(f"no {kind} device(s) {', '.join(sorted(set(unknown)))}")
        targets = [d for d in wanted if known[d]["firmware"] != version]
        if not targets:
            raise OtaConflict(f"no {kind} device needs firmware {version}")
        if canary:
            canaries = [d for d in targets if d in set(canary)]
            if not canaries:
                raise OtaConflict("every canary already runs that version")
        else:
            canaries = targets[: max(1, math.ceil(share * len(targets)))]
        rest = [d for d in targets if d not in set(canaries)]
        rows = [(d, "canary", known[d]["firmware"]) for d in canaries]
        rows += [(d, "rest", known[d]["firmware"]) for d in rest]
        rollout_id = new_event_id()
        self.store.ota_create_rollout(rollout_id, kind, version, share, rows, now)
        log.info(
            "rollout %s of %s firmware %s: canaries %s, then %d more",
            rollout_id,
            kind,
            version,
            canaries,
            len(rest),
        )
        self._watch_stale = True
        self._advance(self._rollout(rollout_id), now)
        return self._rollout(rollout_id)

    def halt(self, rollout_id: str, reason: str) -> dict[str, Any]:
        """Staff stop a rollout: nobody else is offered the image."""
        rollout = self.store.ota_rollout(rollout_id)
        if rollout is None:
            raise LookupError(f"no rollout {rollout_id!r}")
        if rollout["state"] not in ACTIVE_ROLLOUT:
            raise OtaConflict(f"rollout {rollout_id} is {rollout['state']} already")
        self._halt(rollout, self._clock(), f"halted by staff: {reason or 'no reason given'}")
        return self._rollout(rollout_id)

    # ------------------------------------------------------------------ what devices say

    def on_birth(self, device_id: str, firmware: str) -> None:
        """A device (re)connected: which version it runs decides (births are rare, so
        the device's latest rollout is looked up in the store)."""
        now = self._clock()
        for rollout, row in self._latest(device_id):
            version, state = rollout["version"], row["state"]
            if state in ("offered", "installing") and firmware == version:
                self._set(rollout, row, now, state="booted", detail="", booted_ms=now)
                self._heard[(rollout["rollout_id"], device_id)] = now
            elif state in ("booted", "verifying") and firmware != version:
                self._fail(
                    rollout,
                    row,
                    now,
                    f"came back running {firmware} instead of {version}",
                    state="rolled_back",
                    rollback=False,
                )
            elif state == "failed" and row["booted_ms"] is not None and firmware != version:
                self._set(
                    rollout,
                    row,
                    now,
                    state="rolled_back",
                    detail=f"{row['detail']}; came back running {firmware}",
                )
            elif state == "pending":
                self._advance(rollout, now, online=device_id)

    def on_heartbeat(self, device_id: str, firmware: str) -> None:
        if device_id not in self._watching():
            return
        now = self._clock()
        for rollout, row in self._rows(device_id):
            if row["state"] in ("booted", "verifying") and firmware == rollout["version"]:
                self._heard[(rollout["rollout_id"], device_id)] = now
                if row["state"] == "booted":
                    self._set(rollout, row, now, state="verifying", detail="health window running")

    def on_device_state(self, device_id: str, state: str) -> None:
        """Liveness changed (online, or offline by goodbye, last will or silence)."""
        if device_id not in self._watching():
            return
        now = self._clock()
        for rollout, row in self._rows(device_id):
            if state == "offline" and row["state"] in ("booted", "verifying"):
                self._fail(
                    rollout,
                    row,
                    now,
                    f"failed its health check after booting {rollout['version']}: "
                    "went offline during the health window",
                    rollback=True,
                )
            elif state == "online" and row["state"] == "pending":
                self._advance(rollout, now, online=device_id)

    def on_status(self, device_id: str, status: OtaStatus) -> None:
        """What a device says about its update (rare: looked up in the store each time,
        also for devices the gateway already gave up on and told to roll back)."""
        now = self._clock()
        for rollout, row in self._latest(device_id, status.version):
            state, phase = row["state"], status.phase
            said = (
                f"{phase.value} (slot {status.slot}){': ' + status.detail if status.detail else ''}"
            )
            if phase in (OtaPhase.DOWNLOADING, OtaPhase.INSTALLED):
                if state in ("offered", "installing"):
                    self._set(rollout, row, now, state="installing", detail=said)
                    if phase is OtaPhase.DOWNLOADING and status.chunk is not None:
                        self._send_chunk(rollout, row, now, status.chunk)
            elif phase is OtaPhase.BOOTED:
                if state in ("offered", "installing"):
                    self._set(rollout, row, now, state="booted", detail=said, booted_ms=now)
                    self._heard[(rollout["rollout_id"], device_id)] = now
            elif phase is OtaPhase.CONFIRMED:
                if state in ("booted", "verifying") and row["confirm_sent_ms"] is not None:
                    self._set(rollout, row, now, state="confirmed", detail=said)
                    self._advance(rollout, now)
                elif state in ("booted", "verifying"):
                    log.info(
                        "device %s confirmed %s before it was asked", device_id, status.version
                    )
            elif phase is OtaPhase.ROLLED_BACK:
                if state in IN_FLIGHT:
                    self._fail(
                        rollout,
                        row,
                        now,
                        f"rolled back: {said}",
                        state="rolled_back",
                        rollback=False,
                    )
                elif state in ("failed", "rolled_back") and said not in row["detail"]:
                    # the gateway gave up on it (or saw it back on the old version): the
                    # device's own word on it goes with the gateway's
                    self._set(
                        rollout, row, now, state="rolled_back", detail=f"{row['detail']}; {said}"
                    )
            elif phase is OtaPhase.FAILED and state in IN_FLIGHT:
                self._fail(
                    rollout, row, now, f"could not install {status.version}: {said}", rollback=False
                )

    def on_command_ack(self, device_id: str, command: str | None, ok: bool, detail: str) -> None:
        """A refused offer fails the device.  A refused chunk does not: a late duplicate
        is refused once the download is over, and a download that truly fails says so in
        the device's ``failed`` status."""
        if ok or command != OTA_OFFER or device_id not in self._watching():
            return
        now = self._clock()
        for rollout, row in self._rows(device_id):
            if row["state"] == "offered":
                self._fail(
                    rollout,
                    row,
                    now,
                    f"refused the image: {detail or 'no reason'}",
                    rollback=False,
                )

    # ------------------------------------------------------------------ the clock

    def tick(self) -> None:
        """Deadlines and health windows; offers to devices that became free or online."""
        now = self._clock()
        for rollout_id in self.store.ota_rollouts_to_watch():
            rollout = self._rollout(rollout_id)
            for row in rollout["devices"]:
                if row["state"] in IN_FLIGHT:
                    self._check(rollout, row, now)
            self._advance(rollout, now)

    def _check(self, rollout: dict[str, Any], row: dict[str, Any], now: int) -> None:
        cfg, version, state = self.config, rollout["version"], row["state"]
        boot_ms = round(cfg.boot_timeout_s * 1000)
        if state == "offered" and now - row["since_ms"] > boot_ms:
            self._fail(
                rollout,
                row,
                now,
                f"no answer to the offer of {version} within {cfg.boot_timeout_s:g} s",
                rollback=True,
            )
        elif state == "installing" and now - row["since_ms"] > boot_ms:
            self._fail(
                rollout,
                row,
                now,
                f"did not come back running {version} within {cfg.boot_timeout_s:g} s",
                rollback=True,
            )
        elif state in ("booted", "verifying"):
            key = (rollout["rollout_id"], row["device_id"])
            booted = row["booted_ms"] if row["booted_ms"] is not None else row["since_ms"]
            last = self._heard.get(key, max(booted, self._started_ms))
            interval = self._heartbeat_s(row["device_id"])
            if now - last > cfg.missed_heartbeats * interval * 1000:
                silence = (
                    f"no heartbeat in the {(now - last) / 1000:.1f} s since it booted"
                    if state == "booted"
                    else f"no heartbeat for {(now - last) / 1000:.1f} s"
                )
                self._fail(
                    rollout,
                    row,
                    now,
                    f"failed its health check after booting {version}: {silence} "
                    f"(expected one every {interval:g} s)",
                    rollback=True,
                )
            elif row["confirm_sent_ms"] is not None:
                if now - row["confirm_sent_ms"] > boot_ms:
                    self._fail(
                        rollout,
                        row,
                        now,
                        f"did not confirm {version} within {cfg.boot_timeout_s:g} s of being asked",
                        rollback=True,
                    )
            elif state == "verifying" and now - booted >= cfg.health_window_s * 1000:
                self._send(
                    row["device_id"],
                    OTA_CONFIRM,
                    OtaDecision(version=version).model_dump(mode="json"),
                )
                self._set(
                    rollout,
                    row,
                    now,
                    detail=f"healthy for {cfg.health_window_s:g} s; asked to confirm",
                    confirm_sent_ms=now,
                )

    def _heartbeat_s(self, device_id: str) -> float:
        reported = self.store.twin(device_id)["reported"].get("heartbeat_s")
        if isinstance(reported, int | float) and not isinstance(reported, bool) and reported > 0:
            return float(reported)
        return DEFAULT_HEARTBEAT_S

    # ------------------------------------------------------------------ moving on

    def _advance(self, rollout: dict[str, Any], now: int, online: str | None = None) -> None:
        """Offer the image to whoever's turn it is; canary -> rolling -> done."""
        if rollout["state"] == "canary":
            canaries = [d for d in rollout["devices"] if d["wave"] == "canary"]
            if not all(d["state"] == "confirmed" for d in canaries):
                self._offer_some(rollout, canaries, now, online)
                return
            self._set_rollout(rollout, now, "rolling")
            log.info("rollout %s: every canary confirmed; rolling out", rollout["rollout_id"])
        if rollout["state"] == "rolling":
            if all(d["state"] == "confirmed" for d in rollout["devices"]):
                self._set_rollout(rollout, now, "done")
                log.info("rollout %s done", rollout["rollout_id"])
                return
            rest = [d for d in rollout["devices"] if d["wave"] == "rest"]
            self._offer_some(rollout, rest, now, online)

    def _offer_some(
        self, rollout: dict[str, Any], wave: list[dict[str, Any]], now: int, online: str | None
    ) -> None:
        busy = sum(d["state"] in IN_FLIGHT for d in wave)
        for row in wave:
            if busy >= self.config.max_parallel or rollout["state"] not in ACTIVE_ROLLOUT:
                return
            if row["state"] == "pending" and (
                row["device_id"] == online or self._is_online(row["device_id"])
            ):
                self._offer(rollout, row, now)
                busy += 1

    def _offer(self, rollout: dict[str, Any], row: dict[str, Any], now: int) -> None:
        if self.trusted_key is None:
            self._halt(rollout, now, "no trusted firmware key is configured")
            return
        try:
            found = self._image(rollout["device_type"], rollout["version"])
            if found is None:
                self._halt(rollout, now, f"image {rollout['version']} is gone")
                return
            offer, image = found
            verify_image(offer.manifest, image, self.trusted_key)
        except ValidationError as exc:
            self._halt(rollout, now, f"stored manifest is invalid: {_summarise(exc)}")
            return
        except ImageRejected as exc:  # e.g. the trusted key changed since it was registered
            self._halt(rollout, now, f"image {rollout['version']} no longer verifies: {exc.reason}")
            return
        self._send(row["device_id"], OTA_OFFER, offer.model_dump(mode="json", exclude_none=True))
        self._set(rollout, row, now, state="offered", detail="")
        log.info(
            "offered %s firmware %s to %s (%s)",
            rollout["device_type"],
            rollout["version"],
            row["device_id"],
            row["wave"],
        )

    def _send_chunk(
        self, rollout: dict[str, Any], row: dict[str, Any], now: int, index: int
    ) -> None:
        """A device downloading an image offered in chunks asked for chunk ``index``."""
        found = self._image(rollout["device_type"], rollout["version"])
        if found is None:
            self._halt(rollout, now, f"image {rollout['version']} is gone")
            return
        offer, image = found
        args = make_chunk(offer, image, index)
        if args is None:
            self._fail(
                rollout, row, now, f"asked for chunk {index} of {offer.chunks}", rollback=False
            )
            return
        self._send(row["device_id"], OTA_CHUNK, args)

    def _image(self, device_type: str, version: str) -> tuple[OtaOffer, bytes] | None:
        """The offer and bytes of an image (None: not registered), the last one kept in
        memory: a rollout offers it to each device, and a download asks for it once per
        chunk.  Images are never changed or removed once registered.  Raises
        ValidationError when the stored manifest is invalid."""
        key = (device_type, version)
        if self._image_cache is None or self._image_cache[0] != key:
            found = self.store.ota_image(device_type, version)
            if found is None:
                return None
            manifest = FirmwareManifest.model_validate(found[0])
            offer = OtaOffer.model_validate(make_offer(manifest, found[1]))
            self._image_cache = (key, offer, found[1])
        return self._image_cache[1], self._image_cache[2]

    def _fail(
        self,
        rollout: dict[str, Any],
        row: dict[str, Any],
        now: int,
        why: str,
        *,
        rollback: bool,
        state: str = "failed",
    ) -> None:
        """A device failed a check: mark it, maybe tell it to go back, halt the rollout."""
        self._set(rollout, row, now, state=state, detail=why)
        if rollback:
            decision = OtaDecision(version=rollout["version"], reason=why[:300])
            self._send(row["device_id"], OTA_ROLLBACK, decision.model_dump(mode="json"))
        self._halt(rollout, now, f"{row['wave']} device {row['device_id']} {why}")

    def _halt(self, rollout: dict[str, Any], now: int, reason: str) -> None:
        if rollout["state"] in ACTIVE_ROLLOUT:
            self._set_rollout(rollout, now, "halted", reason)
            log.warning("rollout %s halted: %s", rollout["rollout_id"], reason)

    # ------------------------------------------------------------------ bookkeeping

    def _set(
        self,
        rollout: dict[str, Any],
        row: dict[str, Any],
        now: int,
        *,
        state: str | None = None,
        detail: str | None = None,
        booted_ms: int | None = None,
        confirm_sent_ms: int | None = None,
    ) -> None:
        self.store.ota_update(
            rollout["rollout_id"],
            now,
            device_id=row["device_id"],
            state=state,
            detail=detail,
            booted_ms=booted_ms,
            confirm_sent_ms=confirm_sent_ms,
        )
        changes = {
            "state": state,
            "detail": detail,
            "booted_ms": booted_ms,
            "confirm_sent_ms": confirm_sent_ms,
        }
        row.update({k: v for k, v in changes.items() if v is not None})
        if state is not None:
            row["since_ms"] = now
            self._watch_stale = True

    def _set_rollout(
        self, rollout: dict[str, Any], now: int, state: str, reason: str | None = None
    ) -> None:
        self.store.ota_update(rollout["rollout_id"], now, rollout_state=state, reason=reason)
        rollout["state"] = state
        if reason is not None:
            rollout["reason"] = reason
        self._watch_stale = True

    def _rollout(self, rollout_id: str) -> dict[str, Any]:
        rollout = self.store.ota_rollout(rollout_id)
        if rollout is None:
            raise LookupError(f"no rollout {rollout_id!r}")
        return rollout

    def _latest(self, device_id: str, version: str | None = None) -> _Rows:
        """The device's row in its newest rollout (of ``version``), if any."""
        for rollout_id in self.store.ota_rollouts_of(device_id, version)[:1]:
            rollout = self._rollout(rollout_id)
            [row] = [d for d in rollout["devices"] if d["device_id"] == device_id]
            return [(rollout, row)]
        return []

    def _rows(self, device_id: str) -> _Rows:
        out = []
        for rollout_id in sorted(self._watching().get(device_id, ())):
            rollout = self._rollout(rollout_id)
            out += [(rollout, d) for d in rollout["devices"] if d["device_id"] == device_id]
        return out

    def _watching(self) -> dict[str, set[str]]:
        """Device -> the rollouts watching it, rebuilt only after a state changed."""
        if self._watch_stale:
            self._refresh()
        return self._watch

    def _refresh(self) -> None:
        self._watch_stale = False
        watch: dict[str, set[str]] = {}
        for rollout_id in self.store.ota_rollouts_to_watch():
            rollout = self._rollout(rollout_id)
            active = rollout["state"] in ACTIVE_ROLLOUT
            for row in rollout["devices"]:
                if row["state"] in IN_FLIGHT or (active and row["state"] == "pending"):
                    watch.setdefault(row["device_id"], set()).add(rollout_id)
        self._watch = watch
        self._heard = {k: v for k, v in self._heard.items() if k[1] in watch}


def _summarise(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(manifest)'}: {err['msg']}"
        for err in exc.errors()[:5]
    )
