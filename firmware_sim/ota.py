"""A/B firmware slots for a simulated device: verify, install, reboot, trial, roll back.

Attach one to a device (``SimOta(device, trusted_key)``) and the device answers
the OTA commands of :mod:`devices.ota`:

* ``ota`` (args: signed manifest + image, base64, at most
  :data:`devices.ota.MAX_INLINE_IMAGE_BYTES`): the device checks the image's
  size, SHA-256 and the manifest's ed25519 signature against ITS OWN trusted
  public key, and the device type.  A bad image is refused (``OtaStatus``
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
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from devices.ota import (
    OTA_CONFIRM,
    OTA_OFFER,
    OTA_ROLLBACK,
    ImageRejected,
    OtaDecision,
    OtaOffer,
    decode_image,
    load_public_key,
    verify_image,
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


def _other(slot: Slot) -> Slot:
    return "B" if slot == "A" else "A"


class SimOta:
    """The A/B slots and the update logic of one :class:`SimDevice` (sets ``device.ota``)."""

    def __init__(
        self,
        device: SimDevice,
        trusted_key: Ed25519PublicKey | str | bytes,
        *,
        trial_timeout_s: float = 900.0,
        bad_versions: Mapping[str, BadFirmware] | None = None,
    ) -> None:
        self.device = device
        self.trusted_key = (
            trusted_key
            if isinstance(trusted_key, Ed25519PublicKey)
            else load_public_key(trusted_key)
        )
        self.trial_timeout_s = trial_timeout_s
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
            self._report(version, OtaPhase.DOWNLOADING, self.active)
            try:
                if manifest_.device_type != self.device.device_type:
                    raise ImageRejected(
                        f"the image is for {manifest_.device_type.value} devices, "
                        f"this is a {self.device.device_type.value}"
                    )
                image = decode_image(offer.image_b64)
                verify_image(manifest_, image, self.trusted_key)
            except ImageRejected as exc:
                self._report(version, OtaPhase.FAILED, self.active, exc.reason)
                logger.warning(
                    "device %s refused firmware %s: %s", self.device.device_id, version, exc.reason
                )
                return False, exc.reason
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
        """Stop the trial timer (the device is going away)."""
        with self._lock:
            self._stop_timer()

    # ------------------------------------------------------------------ reports

    def _report(self, version: str, phase: OtaPhase, slot: Slot, detail: str = "") -> None:
        device = self.device
        status = OtaStatus(
            seq=device.next_seq(),
            ts=now_ms(),
            version=version,
            phase=phase,
            slot=slot,
            detail=detail[:500],
        )
        device.publish(ota_topic(device.store_id, device.device_id), status)
