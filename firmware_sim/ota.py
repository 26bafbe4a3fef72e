"""A/B firmware slots for a simulated device: verify, install, reboot, trial, roll back.

Attach one to a device (``SimOta(device, trusted_key)``) and the device answers
the OTA commands of :mod:`devices.ota`:

* ``ota`` (args: signed manifest + image, base64, at most
  :data:`devices.ota.MAX_INLINE_IMAGE_BYTES`; or signed manifest + chunk size for
  a larger image, which the device then asks for chunk by chunk in its
  ``downloading`` status and receives in ``ota_chunk`` commands): the device
  checks the image's size, SHA-256 and the manifest's ed25519 signature against
  ITS OWN trusted public key, and the device type.  A bad image is refused (``OtaStatus``
  ``failed``, the command's ack not ok) and nothing changes.  A good one is
  written to the inactive slot (``installed``); then the device reboots into it
  (a power cycle: the link drops, the broker sends the last will, a new birth
  carries the new version) and reports ``booted``: it runs the new slot *on trial*.
* ``ota_confirm``: the trial slot becomes permanent (``confirmed``).
* ``ota_rollback``, or no confirmation within ``trial_timeout_s`` (the
  bootloader's watchdog): reboot into the old slot (``rolled_back``).

The knob for tests and demos: ``bad_versions`` maps a version to how it fails:

* ``"hang"``: it boots (birth with the new version), then its application hangs
  and sends no heartbeat; the OTA agent still obeys ``ota_rollback`` and its
  trial timer.
* ``"crash"``: it never comes up; the bootloader falls back to the old slot at
  once and the device reports ``rolled_back``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from devices.ota import (
    OTA_CHUNK,
    OTA_CONFIRM,
    OTA_OFFER,
    OTA_ROLLBACK,
    FirmwareManifest,
    ImageRejected,
    OtaChunk,
    OtaDecision,
    OtaOffer,
    decode_image,
    load_public_key,
    verify_image,
    verify_manifest,
)
from devices.protocol import Command, OtaPhase, OtaStatus, ota_topic
from firmware_sim.device import SimDevice, now_ms

logger = logging.getLogger(__name__)

Slot = Literal["A", "B"]
BadFirmware = Literal["hang", "crash"]

#: How long the device waits, after taking an image, before it reboots (so that the
#: command's ack and the ``installed`` report leave first).
INSTALL_DELAY_S = 0.2
#: How long a reboot may take to reconnect before the device gives up reporting it.
RECONNECT_WAIT_S = 15.0
#: How long the device is off while it reboots (the broker sees the old connection
#: close, and publishes its last will, before the new one comes).
REBOOT_OFF_S = 0.5
#: A chunk asked for and not come within this long is asked for again ...
ASK_AGAIN_S = 5.0
#: ... this many times in all, then the download fails.
MAX_ASKS = 5


def _other(slot: Slot) -> Slot:
    return "B" if slot == "A" else "A"


@dataclass
class _Download:
    """An image offered in chunks, as far as it came (in RAM: a reboot loses it)."""

    offer: OtaOffer
    data: bytearray = field(default_factory=bytearray)
    next: int = 0
    asks: int = 0  # times the next chunk was asked for


class SimOta:
    """The A/B slots and the update logic of one :class:`SimDevice` (sets ``device.ota``)."""

    def __init__(
        self,
        device: SimDevice,
        trusted_key: Ed25519PublicKey | str | bytes,
        *,
        trial_timeout_s: float = 900.0,
        bad_versions: Mapping[str, BadFirmware] | None = None,
        ask_again_s: float = ASK_AGAIN_S,
    ) -> None:
        self.device = device
        self.trusted_key = (
            trusted_key
            if isinstance(trusted_key, Ed25519PublicKey)
            else load_public_key(trusted_key)
        )
        self.trial_timeout_s = trial_timeout_s
        self.ask_again_s = ask_again_s
        self.bad_versions: dict[str, BadFirmware] = dict(bad_versions or {})
        self.slots: dict[Slot, str | None] = {"A": device.firmware, "B": None}
        self.active: Slot = "A"
        #: While the active slot runs on trial: the slot it came from.
        self.trial_from: Slot | None = None
        #: False while a "hang" firmware runs: the application sends no heartbeat.
        self.app_alive = True
        self._lock = threading.RLock()
        self._jobs = threading.Lock()  # one reboot at a time
        self._busy = False  # an image is installed and the reboot into it is pending
        self._cancel_boot = False
        self._download: _Download | None = None
        self._ask_timer: threading.Timer | None = None
        self._timer: threading.Timer | None = None
        device.ota = self

    @property
    def on_trial(self) -> bool:
        return self.trial_from is not None

    # ------------------------------------------------------------------ commands

    def handle_command(self, name: str, command: Command) -> tuple[bool, str]:
        """Runs on the device's network thread: never blocks on a reboot."""
        if name == OTA_OFFER:
            return self._offer(command.args)
        if name == OTA_CHUNK:
            return self._chunk(command.args)
        if name == OTA_CONFIRM:
            return self._confirm(command.args)
        if name == OTA_ROLLBACK:
            return self._rollback(command.args)
        return False, f"unknown command {name!r}"

    def _offer(self, args: dict[str, Any]) -> tuple[bool, str]:
        try:
            offer = OtaOffer.model_validate(args)
        except ValidationError as exc:
            manifest = args.get("manifest")
            raw = manifest.get("version") if isinstance(manifest, dict) else None
            version = raw if isinstance(raw, str) and 0 < len(raw) <= 64 else "unknown"
            detail = f"invalid offer: {exc.errors()[0]['msg']}"
            self._report(version, OtaPhase.FAILED, self.active, detail)
            return False, detail
        manifest_ = offer.manifest
        version = manifest_.version
        with self._lock:
            if self._busy or self.on_trial:
                detail = "another update is in progress"
                self._report(version, OtaPhase.FAILED, self.active, detail)
                return False, detail
            if self.slots[self.active] == version:
                self._report(version, OtaPhase.CONFIRMED, self.active, "already running it")
                return True, "already running it"
            self._download = None
            if offer.image_b64 is not None:
                self._report(version, OtaPhase.DOWNLOADING, self.active)
            try:
                if manifest_.device_type != self.device.device_type:
                    raise ImageRejected(
                        f"the image is for {manifest_.device_type.value} devices, "
                        f"this is a {self.device.device_type.value}"
                    )
                if offer.image_b64 is None:  # in chunks: check the signature before them
                    verify_manifest(manifest_, self.trusted_key)
                    self._download = _Download(offer)
                    self._ask(self._download)
                    return True, f"downloading {offer.chunks} chunks"
                image = decode_image(offer.image_b64)
            except ImageRejected as exc:
                return self._refuse(version, exc)
            return self._install(manifest_.version, manifest_, image)

    def _chunk(self, args: dict[str, Any]) -> tuple[bool, str]:
        try:
            chunk = OtaChunk.model_validate(args)
        except ValidationError as exc:
            return False, f"invalid chunk: {exc.errors()[0]['msg']}"
        with self._lock:
            download = self._download
            if download is None or download.offer.manifest.version != chunk.version:
                return False, f"not downloading {chunk.version}"
            if chunk.index != download.next:  # a duplicate, or one overtook a lost one
                download.asks = 0
                self._ask(download)
                return True, f"chunk {chunk.index} ignored; asked for {download.next}"
            offer = download.offer
            size = offer.manifest.size
            assert offer.chunk_bytes is not None
            want = min(offer.chunk_bytes, size - chunk.index * offer.chunk_bytes)
            try:
                data = decode_image(chunk.data_b64, limit=offer.chunk_bytes)
                if len(data) != want:
                    raise ImageRejected(f"chunk {chunk.index} has {len(data)} bytes, not {want}")
            except ImageRejected as exc:
                self._download = None
                return self._refuse(chunk.version, exc)
            download.data += data
            download.next += 1
            download.asks = 0
            if download.next < offer.chunks:
                self._ask(download)
                return True, f"chunk {chunk.index + 1} of {offer.chunks}"
            self._download = None
            return self._install(chunk.version, offer.manifest, bytes(download.data))

    def _ask(self, download: _Download) -> None:
        """Ask for the next chunk (in the ``downloading`` status), and again every
        ``ask_again_s`` while it does not come (a lost request or chunk), at most
        :data:`MAX_ASKS` times; then the download fails (call with the lock held)."""
        offer = download.offer
        version = offer.manifest.version
        if self._ask_timer is not None:
            self._ask_timer.cancel()
            self._ask_timer = None
        if download.asks >= MAX_ASKS:
            self._download = None
            detail = f"chunk {download.next} of {offer.chunks} never came ({MAX_ASKS} asks)"
            self._refuse(version, ImageRejected(detail))
            return
        download.asks += 1
        self._report(
            version,
            OtaPhase.DOWNLOADING,
            self.active,
            f"{download.next} of {offer.chunks} chunks",
            chunk=download.next,
        )
        wanted = download.next

        def again() -> None:
            with self._lock:
                if self._download is download and download.next == wanted:
                    self._ask(download)

        self._ask_timer = threading.Timer(self.ask_again_s, again)
        self._ask_timer.daemon = True
        self._ask_timer.start()

    def _refuse(self, version: str, exc: ImageRejected) -> tuple[bool, str]:
        self._report(version, OtaPhase.FAILED, self.active, exc.reason)
        logger.warning(
            "device %s refused firmware %s: %s", self.device.device_id, version, exc.reason
        )
        return False, exc.reason

    def _install(self, version: str, manifest: FirmwareManifest, image: bytes) -> tuple[bool, str]:
        """Check the whole image and write it to the inactive slot, then reboot into it
        (call with the lock held)."""
        try:
            verify_image(manifest, image, self.trusted_key)
        except ImageRejected as exc:
            return self._refuse(version, exc)
        target = _other(self.active)
        self.slots[target] = version
        self._busy, self._cancel_boot = True, False
        self._report(version, OtaPhase.INSTALLED, target)
        self._spawn(lambda: self._boot_new(version, target))
        return True, f"installed in slot {target}; rebooting"

    def _confirm(self, args: dict[str, Any]) -> tuple[bool, str]:
        try:
            decision = OtaDecision.model_validate(args)
        except ValidationError as exc:
            return False, f"invalid args: {exc.errors()[0]['msg']}"
        with self._lock:
            running = self.slots[self.active]
            if running != decision.version:
                return False, f"running {running}, not {decision.version}"
            if self.on_trial:
                self._stop_timer()
                self.trial_from = None
            self._report(running, OtaPhase.CONFIRMED, self.active)
        return True, f"slot {self.active} is permanent"

    def _rollback(self, args: dict[str, Any]) -> tuple[bool, str]:
        try:
            decision = OtaDecision.model_validate(args)
        except ValidationError as exc:
            return False, f"invalid args: {exc.errors()[0]['msg']}"
        reason = f"told to roll back: {decision.reason or 'no reason given'}"
        with self._lock:
            if self._busy:  # installed, not yet rebooted into it: just don't
                self._cancel_boot = True
                return True, "update cancelled before the reboot"
            if not self.on_trial or self.slots[self.active] != decision.version:
                return True, f"not running {decision.version} on trial; nothing to do"
        self._spawn(lambda: self._revert(reason))
        return True, "rolling back"

    # ------------------------------------------------------------------ reboots

    def _boot_new(self, version: str, target: Slot) -> None:
        time.sleep(INSTALL_DELAY_S)
        with self._lock:
            previous = self.active
            cancelled, self._cancel_boot = self._cancel_boot, False
            if cancelled:
                self._busy = False
                self.slots[target] = None
                self._report(version, OtaPhase.ROLLED_BACK, previous, "cancelled before reboot")
                return
        mode = self.bad_versions.get(version)
        if mode == "crash":
            # The bootloader tries the new slot; it never comes up; back to the old one.
            rebooted = self._power_cycle(lambda: None)
            with self._lock:
                self._busy = False
                self.slots[target] = None
            if rebooted and self.device.wait_connected(RECONNECT_WAIT_S):
                self._report(version, OtaPhase.ROLLED_BACK, previous, f"slot {target} did not boot")
            return

        def switch() -> None:
            with self._lock:
                self.active, self.trial_from = target, previous
                self.device.firmware = version
                self.app_alive = mode != "hang"

        rebooted = self._power_cycle(switch)
        with self._lock:
            self._busy = False
            if not rebooted:
                return
            self._timer = threading.Timer(
                self.trial_timeout_s,
                lambda: self._spawn(
                    lambda: self._revert(f"not confirmed within {self.trial_timeout_s:g} s")
                ),
            )
            self._timer.daemon = True
            self._timer.start()
        if self.device.wait_connected(RECONNECT_WAIT_S):
            self._report(version, OtaPhase.BOOTED, target)
        logger.info(
            "device %s booted %s from slot %s (on trial)", self.device.device_id, version, target
        )

    def _revert(self, reason: str) -> None:
        with self._lock:
            if not self.on_trial:
                return
            self._stop_timer()
            tried, back = self.slots[self.active] or "unknown", self.trial_from
            assert back is not None

        def switch() -> None:
            with self._lock:
                self.active, self.trial_from = back, None
                self.device.firmware = self.slots[back] or self.device.firmware
                self.app_alive = True

        if not self._power_cycle(switch):
            return
        if self.device.wait_connected(RECONNECT_WAIT_S):
            self._report(tried, OtaPhase.ROLLED_BACK, back, reason)
        logger.info("device %s rolled back to slot %s: %s", self.device.device_id, back, reason)

    def _power_cycle(self, while_off: Callable[[], None]) -> bool:
        """Reboot: the link drops without a goodbye, RAM is lost, a new birth follows.

        False when the device is stopped (nothing happens then)."""
        device = self.device
        if not device.running:
            return False
        device.drop_link(power_loss=True)
        with self._lock:
            self._download = None  # RAM is lost
        while_off()
        time.sleep(REBOOT_OFF_S)
        device.restore_link()
        return True

    def _spawn(self, job: Callable[[], None]) -> None:
        def run() -> None:
            with self._jobs:
                try:
                    job()
                except Exception:
                    logger.exception("device %s: OTA step failed", self.device.device_id)

        threading.Thread(target=run, name=f"{self.device.device_id}-ota", daemon=True).start()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self) -> None:
        """Stop the trial timer and any download (the device is going away)."""
        with self._lock:
            self._stop_timer()
            self._download = None
            if self._ask_timer is not None:
                self._ask_timer.cancel()
                self._ask_timer = None

    # ------------------------------------------------------------------ reports

    def _report(
        self,
        version: str,
        phase: OtaPhase,
        slot: Slot,
        detail: str = "",
        chunk: int | None = None,
    ) -> None:
        device = self.device
        status = OtaStatus(
            seq=device.next_seq(),
            ts=now_ms(),
            version=version,
            phase=phase,
            slot=slot,
            detail=detail[:500],
            chunk=chunk,
        )
        device.publish(ota_topic(device.store_id, device.device_id), status)
