"""Fault injection for the simulated devices: what goes wrong in a real store.

Every fault is switched on in a :class:`FaultConfig`, from YAML (``--faults FILE``)
or from the command line (``--fault KEY=VALUE``, repeatable), for all devices, for
every device of a type, or for one device (the most specific setting wins).

Device faults (a :class:`DeviceFaults`; CLI ``KEY=VALUE`` for every device,
``KEY=VALUE@DEVICE`` for one device, ``KEY=VALUE@type:TYPE`` for a device type):

============================  =====================================================
``clock_skew_ms=-5000``       the device's clock is off: added to the ``ts`` of
                              every message it sends
``duplicate_rate=0.05``       share of data messages sent twice (same payload,
                              same ``seq``), as after a lost PUBACK
``reorder_rate=0.05``         share of data messages held back and sent after the
                              next one (at most ``REORDER_MAX_HOLD_S`` later)
``disconnect_every_s=30``     a network drop every N s: the TCP connection closes
``disconnect_for_s=2``        without a goodbye, so the broker publishes the last
                              will; after ``disconnect_for_s`` the device
                              reconnects with a new birth (``birth_count`` + 1)
``power_cycle_every_s=60``    a power cut every N s, off for ``power_off_s``: no
``power_off_s=1``             goodbye, ``seq`` starts again at 0, the uptime
                              restarts, a new birth (``birth_count`` persists)
``impersonate=shelf-2``       data messages go out under another device's id in
``impersonate_rate=1``        the topic, the payload's ``device_id`` naming the
                              real one (the gateway dead-letters them; a broker
                              with the generated ACL refuses them)
============================  =====================================================

Data messages are telemetry, events and command acks; the birth and the retained
online/offline state are never duplicated, held back or impersonated.  While its
link is down a device loses what it sends (as a real device with no buffer does).

Load-cell faults of a shelf's plate (CLI ``FAULT=SHELF:PLATE[:VALUE]``, YAML
``plates: [{device_id, plate, fault, value}]``); they call
``SimShelf.inject(plate, fault, value)``:

============================  =====================================================
``stuck=shelf-1:3``           the plate's output freezes (zero variance)
``noisy=shelf-1:3:25``        the noise sd becomes VALUE grams
``drift=shelf-1:3:30``        VALUE grams per minute of slow drift are added
``saturate=shelf-1:3``        the output is pinned at full scale
============================  =====================================================

``seed=N`` makes the random faults repeatable.  The same in YAML::

    seed: 1
    all: {duplicate_rate: 0.01}
    types:
      esl: {clock_skew_ms: -3000}
    devices:
      shelf-2: {disconnect_every_s: 30, disconnect_for_s: 3}
      gate-exit: {impersonate: gate-entry}
    plates:
      - {device_id: shelf-1, plate: 3, fault: stuck}
"""

from __future__ import annotations

import heapq
import logging
import random
import threading
import time
from collections.abc import Mapping, Sequence
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Literal, Protocol, get_args, runtime_checkable

import paho.mqtt.client as mqtt
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from devices.protocol import (
    Birth,
    DecodeError,
    DeviceId,
    DeviceType,
    MessageKind,
    command_ack_topic,
    device_topic,
    encode,
    parse_topic,
)
from firmware_sim.device import SimDevice
from firmware_sim.loadcell import Fault

logger = logging.getLogger(__name__)

PlateFaultKind = Fault
PLATE_FAULTS: tuple[str, ...] = get_args(PlateFaultKind)
#: The longest a held-back (reordered) message waits for a next one.
REORDER_MAX_HOLD_S = 1.0


class FaultError(ValueError):
    """A fault setting that cannot be used; the message says which and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceFaults(_Strict):
    """The faults of one device (or of all, or of a type: merged, most specific wins)."""

    clock_skew_ms: int = Field(default=0, ge=-86_400_000, le=86_400_000)
    duplicate_rate: float = Field(default=0.0, ge=0, le=1)
    reorder_rate: float = Field(default=0.0, ge=0, le=1)
    disconnect_every_s: float | None = Field(default=None, gt=0)
    disconnect_for_s: float = Field(default=2.0, ge=0, le=3600)
    power_cycle_every_s: float | None = Field(default=None, gt=0)
    power_off_s: float = Field(default=1.0, ge=0, le=3600)
    impersonate: DeviceId | None = None
    impersonate_rate: float = Field(default=1.0, ge=0, le=1)

    @property
    def on_the_wire(self) -> bool:
        """Whether any fault acts on what the device publishes."""
        return bool(
            self.clock_skew_ms or self.duplicate_rate or self.reorder_rate or self.impersonate
        )

    @property
    def timed(self) -> bool:
        return self.disconnect_every_s is not None or self.power_cycle_every_s is not None


DEVICE_KEYS: tuple[str, ...] = tuple(DeviceFaults.model_fields)


class PlateFault(_Strict):
    device_id: DeviceId
    plate: int = Field(ge=0, le=63)
    fault: PlateFaultKind
    value: float = 0.0


class FaultConfig(_Strict):
    """Which faults the simulator injects (see the module docstring for the syntax)."""

    seed: int = 0
    all: DeviceFaults = DeviceFaults()
    types: dict[DeviceType, DeviceFaults] = Field(default_factory=dict)
    devices: dict[DeviceId, DeviceFaults] = Field(default_factory=dict)
    plates: list[PlateFault] = Field(default_factory=list)

    def for_device(self, device_id: str, device_type: DeviceType) -> DeviceFaults:
        """The faults of one device: all < its type < the device itself."""
        merged: dict[str, Any] = {}
        for layer in (self.all, self.types.get(device_type), self.devices.get(device_id)):
            if layer is not None:
                merged.update(layer.model_dump(exclude_unset=True))
        return DeviceFaults.model_validate(merged)

    @property
    def empty(self) -> bool:
        layers = [self.all, *self.types.values(), *self.devices.values()]
        return not self.plates and not any(layer.model_fields_set for layer in layers)

    def describe(self) -> list[str]:
        """One line per switched-on fault, for logs."""
        lines = []
        scopes: list[tuple[str, DeviceFaults]] = [("all devices", self.all)]
        scopes += [(f"type {t.value}", f) for t, f in self.types.items()]
        scopes += [(f"device {d}", f) for d, f in self.devices.items()]
        for scope, faults in scopes:
            for key, value in sorted(faults.model_dump(exclude_unset=True).items()):
                lines.append(f"{scope}: {key}={value}")
        lines += [f"{p.device_id} plate {p.plate}: {p.fault} {p.value:g}" for p in self.plates]
        return lines


# --------------------------------------------------------------------------- parsing


def _errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def _unknown_key(key: str) -> FaultError:
    known = [*DEVICE_KEYS, *PLATE_FAULTS, "seed"]
    close = get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return FaultError(f"unknown fault {key!r}{hint}; known: {', '.join(known)}")


def _scope(target: str) -> tuple[Literal["all", "types", "devices"], str]:
    if not target:
        return "all", ""
    if target.startswith("type:"):
        kind = target.removeprefix("type:")
        try:
            return "types", DeviceType(kind).value
        except ValueError:
            types = ", ".join(t.value for t in DeviceType)
            raise FaultError(f"unknown device type {kind!r} (types: {types})") from None
    try:
        PlateFault.model_validate({"device_id": target, "plate": 0, "fault": "stuck"})
    except ValidationError:
        raise FaultError(f"{target!r} is not a device id") from None
    return "devices", target


def _plate_fault(key: str, value: str) -> PlateFault:
    parts = value.split(":")
    if len(parts) not in (2, 3):
        raise FaultError(f"{key} needs SHELF:PLATE or SHELF:PLATE:VALUE, got {value!r}")
    data: dict[str, Any] = {"device_id": parts[0], "plate": parts[1], "fault": key}
    if len(parts) == 3:
        data["value"] = parts[2]
    try:
        return PlateFault.model_validate(data)
    except ValidationError as exc:
        raise FaultError(_errors(exc)) from None


def parse_faults(args: Sequence[str], base: FaultConfig | None = None) -> FaultConfig:
    """Apply ``--fault`` strings (``KEY=VALUE[@TARGET]``) on top of ``base``.

    Raises :class:`FaultError` naming the argument and what is wrong with it.
    """
    data = (base or FaultConfig()).model_dump(exclude_unset=True)
    for arg in args:
        try:
            _apply_arg(data, arg)
        except FaultError as exc:
            raise FaultError(f"--fault {arg!r}: {exc}") from None
    try:
        return FaultConfig.model_validate(data)
    except ValidationError as exc:  # pragma: no cover - each piece was validated above
        raise FaultError(_errors(exc)) from None


def _apply_arg(data: dict[str, Any], arg: str) -> None:
    key, sep, rest = arg.partition("=")
    key = key.strip()
    if not sep or not key:
        raise FaultError("expected KEY=VALUE, e.g. duplicate_rate=0.05 or stuck=shelf-1:3")
    if key == "seed":
        try:
            data["seed"] = int(rest)
        except ValueError:
            raise FaultError(f"seed must be an integer, got {rest!r}") from None
        return
    if key in PLATE_FAULTS:
        data.setdefault("plates", []).append(_plate_fault(key, rest).model_dump())
        return
    if key not in DEVICE_KEYS:
        raise _unknown_key(key)
    value, _, target = rest.partition("@")
    scope, name = _scope(target.strip())
    layer: dict[str, Any]
    if scope == "all":
        layer = dict(data.get("all", {}))
    else:
        layer = dict(data.setdefault(scope, {}).get(name, {}))
    layer[key] = None if value.strip().lower() in {"none", "off"} else value.strip()
    try:
        checked = DeviceFaults.model_validate(layer).model_dump(exclude_unset=True)
    except ValidationError as exc:
        raise FaultError(_errors(exc)) from None
    if scope == "all":
        data["all"] = checked
    else:
        data[scope][name] = checked


def load_faults(path: Path) -> FaultConfig:
    """Read a YAML fault file; errors name the file and the key."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FaultError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise FaultError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise FaultError(f"{path}: top level must be a mapping")
    try:
        return FaultConfig.model_validate(data)
    except ValidationError as exc:
        raise FaultError(f"{path}: {_errors(exc)}") from None


# --------------------------------------------------------------------------- the wire


class _HeldInfo(mqtt.MQTTMessageInfo):
    """The publish result of a held-back message: complete once it was really sent."""

    def __init__(self) -> None:
        super().__init__(0)
        self._released = threading.Event()
        self._real: mqtt.MQTTMessageInfo | None = None

    def release(self, real: mqtt.MQTTMessageInfo) -> None:
        self._real = real
        self.rc = real.rc
        self._released.set()

    def wait_for_publish(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._released.wait(timeout) or self._real is None:
            return
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        self._real.wait_for_publish(left)

    def is_published(self) -> bool:
        return self._real is not None and self._real.is_published()


class WireFaults:
    """The publish-path faults of one device; :meth:`SimDevice.publish` hands over to it.

    Thread-safe: shelves, heartbeats and command acks publish from different threads.
    """

    def __init__(self, device_id: str, faults: DeviceFaults, rng: random.Random) -> None:
        self.device_id = device_id
        self.faults = faults
        self._rng = rng
        self._lock = threading.Lock()
        self._held: tuple[mqtt.Client, str, bytes, int, _HeldInfo] | None = None
        self._flush: threading.Timer | None = None
        self.duplicated = 0
        self.reordered = 0
        self.impersonated = 0

    def publish(
        self, client: mqtt.Client, topic: str, message: BaseModel, qos: int, *, retain: bool
    ) -> mqtt.MQTTMessageInfo:
        f = self.faults
        if f.clock_skew_ms and isinstance(getattr(message, "ts", None), int):
            ts = max(0, getattr(message, "ts") + f.clock_skew_ms)  # noqa: B009 - typed above
            message = message.model_copy(update={"ts": ts})
        if retain or isinstance(message, Birth):
            return client.publish(topic, encode(message), qos=qos, retain=retain)
        if f.impersonate and self._rng.random() < f.impersonate_rate:
            topic, message = self._impersonate(topic, message, f.impersonate)
        payload = encode(message)
        with self._lock:
            if f.reorder_rate and self._held is None and self._rng.random() < f.reorder_rate:
                held = _HeldInfo()
                self._held = (client, topic, payload, qos, held)
                self._flush = threading.Timer(REORDER_MAX_HOLD_S, self.flush)
                self._flush.daemon = True
                self._flush.start()
                self.reordered += 1
                return held
            info = client.publish(topic, payload, qos=qos)
            if f.duplicate_rate and self._rng.random() < f.duplicate_rate:
                client.publish(topic, payload, qos=qos)
                self.duplicated += 1
            self._send_held()
        return info

    def flush(self) -> None:
        """Send a held-back message now (nothing came after it in time)."""
        with self._lock:
            self._send_held()

    def drop_held(self) -> None:
        """The link went down: a held-back message is lost."""
        with self._lock:
            self._held = None
            if self._flush is not None:
                self._flush.cancel()
                self._flush = None

    def _send_held(self) -> None:
        held, self._held = self._held, None
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if held is not None:
            client, topic, payload, qos, info = held
            info.release(client.publish(topic, payload, qos=qos))

    def _impersonate(self, topic: str, message: BaseModel, other: str) -> tuple[str, BaseModel]:
        try:
            store_id, _, kind, command = parse_topic(topic)
        except DecodeError:
            return topic, message
        if kind is MessageKind.CMD_ACK and command is not None:
            fake = command_ack_topic(store_id, other, command)
        else:
            fake = device_topic(store_id, other, kind)
        self.impersonated += 1
        return fake, message.model_copy(update={"device_id": self.device_id})


# --------------------------------------------------------------------------- injector


@runtime_checkable
class _Plates(Protocol):
    """A device with load-cell plates (``SimShelf``)."""

    @property
    def plate_count(self) -> int: ...

    def inject(self, plate: int, fault: PlateFaultKind, value: float = 0.0) -> None: ...

    def clear_faults(self, plate: int | None = None) -> None: ...


class FaultInjector:
    """Applies a :class:`FaultConfig` to running devices.

    :meth:`start` puts the wire faults into the devices' publish path, injects the
    plate faults and runs one thread for the timed ones (network drops, power
    cycles); :meth:`stop` undoes all of it.  Unknown targets are refused up front.
    """

    def __init__(self, config: FaultConfig, devices: Sequence[SimDevice]) -> None:
        self.config = config
        self.devices: Mapping[str, SimDevice] = {d.device_id: d for d in devices}
        self._check()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.outages: list[tuple[str, str]] = []  # (device id, "network" | "power"), in order

    def _check(self) -> None:
        known = ", ".join(sorted(self.devices)) or "none"
        for device_id in self.config.devices:
            if device_id not in self.devices:
                raise FaultError(f"fault for unknown device {device_id!r} (devices: {known})")
        for device in self.devices.values():
            target = self.config.for_device(device.device_id, device.device_type).impersonate
            if target == device.device_id:
                raise FaultError(f"{device.device_id} cannot impersonate itself")
        for pf in self.config.plates:
            shelf = self.devices.get(pf.device_id)
            if shelf is None:
                raise FaultError(f"plate fault for unknown device {pf.device_id!r} ({known})")
            if not isinstance(shelf, _Plates):
                raise FaultError(f"{pf.device_id} has no load-cell plates (plate fault {pf.fault})")
            if pf.plate >= shelf.plate_count:
                raise FaultError(
                    f"{pf.device_id} has plates 0..{shelf.plate_count - 1}, not {pf.plate}"
                )

    def faults(self, device: SimDevice) -> DeviceFaults:
        return self.config.for_device(device.device_id, device.device_type)

    def start(self) -> None:
        self._stop.clear()
        for line in self.config.describe():
            logger.warning("fault injection: %s", line)
        for device in self.devices.values():
            faults = self.faults(device)
            if faults.on_the_wire:
                rng = random.Random(f"{self.config.seed}:{device.device_id}")
                device.wire_faults = WireFaults(device.device_id, faults, rng)
        for pf in self.config.plates:
            shelf = self.devices[pf.device_id]
            assert isinstance(shelf, _Plates)
            shelf.inject(pf.plate, pf.fault, pf.value)
        if any(self.faults(d).timed for d in self.devices.values()):
            self._thread = threading.Thread(target=self._run, name="fault-injector", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        for device in self.devices.values():
            wire, device.wire_faults = device.wire_faults, None
            if wire is not None:
                wire.flush()
            if device.link_down and device.running:
                device.restore_link()
        for pf in self.config.plates:
            shelf = self.devices[pf.device_id]
            if isinstance(shelf, _Plates):
                shelf.clear_faults(pf.plate)

    def _run(self) -> None:
        """Network drops and power cycles, each on its own period, one at a time per device."""
        start = time.monotonic()
        due: list[tuple[float, str, str]] = []  # (when, device id, "network" | "power")
        for device in self.devices.values():
            f = self.faults(device)
            if f.disconnect_every_s is not None:
                due.append((start + f.disconnect_every_s, device.device_id, "network"))
            if f.power_cycle_every_s is not None:
                due.append((start + f.power_cycle_every_s, device.device_id, "power"))
        heapq.heapify(due)
        while due and not self._stop.is_set():
            when, device_id, what = heapq.heappop(due)
            if self._stop.wait(max(0.0, when - time.monotonic())):
                return
            device, f = self.devices[device_id], self.faults(self.devices[device_id])
            off_s = f.power_off_s if what == "power" else f.disconnect_for_s
            every = f.power_cycle_every_s if what == "power" else f.disconnect_every_s
            assert every is not None
            if device.running and device.connected:
                try:
                    self.outage(device, what == "power", off_s)
                except Exception:
                    logger.exception("fault injection: %s on %s failed", what, device_id)
            heapq.heappush(due, (time.monotonic() + every, device_id, what))

    def outage(self, device: SimDevice, power: bool, off_s: float) -> None:
        """Take a device's link (or power) away for ``off_s`` seconds, then bring it back."""
        kind = "power" if power else "network"
        logger.warning("fault injection: %s %s lost for %.1f s", device.device_id, kind, off_s)
        self.outages.append((device.device_id, kind))
        device.drop_link(power_loss=power)
        self._stop.wait(off_s)  # stop() brings every device back itself
        if device.running and not self._stop.is_set():
            device.restore_link()
