"""The wire protocol: the ONE place that knows MQTT topics and payload shapes.

Topic shape (see DESIGN.md)::

    storeedge/v1/{store_id}/{device_id}/birth
    storeedge/v1/{store_id}/{device_id}/state            (retained; also the last will)
    storeedge/v1/{store_id}/{device_id}/telemetry/{kind}
    storeedge/v1/{store_id}/{device_id}/event/{kind}
    storeedge/v1/{store_id}/{device_id}/cmd/{name}
    storeedge/v1/{store_id}/{device_id}/cmd/{name}/ack
    storeedge/v1/{store_id}/gateway/...                  (published by the gateway)

Inbound payloads (what devices send) are validated leniently: unknown keys are
ignored so that newer firmware keeps working, but every known key is typed and
range-checked.  Every device message carries the device's monotonic ``seq``
and a ``ts`` in milliseconds.  Messages are frozen pydantic models.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PROTOCOL_ROOT = "storeedge/v1"
GATEWAY_ID = "gateway"

#: Samples per weight telemetry message and the nominal sample rate.
SAMPLES_PER_BATCH = 12
SAMPLE_RATE_HZ = 60

_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
DeviceId = Annotated[str, Field(pattern=_ID_PATTERN)]
Seq = Annotated[int, Field(ge=0)]
#: A setting's value in a device twin.
TwinValue = str | int | float | bool
TsMs = Annotated[int, Field(ge=0)]


class DeviceType(StrEnum):
    SHELF = "shelf"
    GATE = "gate"
    ESL = "esl"
    FRIDGE = "fridge"
    CAMERA = "camera"


class MessageKind(StrEnum):
    """What an inbound topic carries; one handler per kind in the gateway."""

    BIRTH = "birth"
    STATE = "state"
    WEIGHT = "telemetry/weight"
    GATE = "event/gate"
    POSITIONS = "telemetry/positions"
    HEARTBEAT = "telemetry/heartbeat"
    REPORTED = "event/reported"
    CMD_ACK = "cmd/ack"
    TEMPERATURE = "telemetry/temperature"
    OTA = "event/ota"
    PRODUCT = "event/product"
    HANDOFF = "event/handoff"


# --------------------------------------------------------------------------- payloads


class _DeviceMessage(BaseModel):
    """Lenient schema for what devices send: extra keys ignored, known keys strict."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    seq: Seq
    ts: TsMs
    device_id: str | None = Field(
        default=None, description="when sent, must name the device of the topic"
    )


class Birth(_DeviceMessage):
    """Sent once per connection; ``birth_count`` grows with every (re)connect."""

    device_type: DeviceType
    firmware: str = Field(min_length=1, max_length=64)
    birth_count: int = Field(ge=0)
    plates: int = Field(default=0, ge=0, le=64)
    reported: dict[str, TwinValue] = Field(
        default_factory=dict, description="the device's settings as it runs them (twin)"
    )


class Reported(_DeviceMessage):
    """A device's settings after it changed them (the reported half of its twin)."""

    reported: dict[str, TwinValue] = Field(max_length=64)


class DeviceState(_DeviceMessage):
    """Retained online/offline flag; the offline form is the device's last will."""

    state: Literal["online", "offline"]


class Heartbeat(_DeviceMessage):
    """Sent every few seconds: the device is alive, and how it is doing."""

    uptime_s: float = Field(ge=0)
    firmware: str = Field(min_length=1, max_length=64)
    battery_pct: float | None = Field(default=None, ge=0, le=100)
    rssi_dbm: int | None = Field(default=None, ge=-150, le=0)


class WeightBatch(_DeviceMessage):
    """Load-cell samples of every plate of one shelf.

    ``samples[i]`` holds the readings of plate ``i`` in grams, oldest first,
    ``ts`` is the time of the first sample and ``rate_hz`` the sample rate.
    """

    rate_hz: int = Field(default=SAMPLE_RATE_HZ, gt=0, le=1000)
    samples: list[list[float]] = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _same_length(self) -> WeightBatch:
        lengths = {len(plate) for plate in self.samples}
        if len(lengths) != 1 or 0 in lengths:
            raise ValueError("every plate must carry the same, non-zero number of samples")
        return self

    @property
    def sample_count(self) -> int:
        return len(self.samples[0])


class GateEvent(_DeviceMessage):
    """A shopper passed a gate with their session token (from the app's QR code)."""

    direction: Literal["entry", "exit"]
    session_token: str = Field(min_length=4, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")


class TrackPosition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    track_id: str = Field(min_length=1, max_length=64)
    x: float = Field(ge=-1000, le=1000, description="floor plan, metres")
    y: float = Field(ge=-1000, le=1000)
    session_token: str | None = Field(
        default=None, description="set when the tracker knows whose track this is"
    )
    hand_x: float | None = Field(
        default=None, ge=-1000, le=1000, description="the reaching hand (pose), metres"
    )
    hand_y: float | None = Field(default=None, ge=-1000, le=1000)
    hand_z: float | None = Field(default=None, ge=-10, le=10, description="height")


class Positions(_DeviceMessage):
    """Shopper floor positions from a camera tracker (one message per frame or tick)."""

    positions: list[TrackPosition] = Field(max_length=256)


class Temperature(_DeviceMessage):
    """A fridge or freezer sensor's reading (degrees Celsius)."""

    celsius: float = Field(ge=-60, le=80)
    door_open: bool | None = Field(default=None, description="when the unit has a door switch")


class OtaPhase(StrEnum):
    """Where a device is in a firmware update (A/B slots)."""

    DOWNLOADING = "downloading"
    INSTALLED = "installed"  # written and verified in the inactive slot
    BOOTED = "booted"  # running the new slot on trial
    CONFIRMED = "confirmed"  # the gateway made the new slot permanent
    ROLLED_BACK = "rolled_back"  # back on the old slot
    FAILED = "failed"  # refused or could not install (bad signature, hash, space)


class OtaStatus(_DeviceMessage):
    """A device's progress through one firmware update."""

    version: str = Field(min_length=1, max_length=64)
    phase: OtaPhase
    slot: Literal["A", "B"]
    detail: str = Field(default="", max_length=500)
    chunk: int | None = Field(
        default=None,
        ge=0,
        description="downloading an image offered in chunks: the chunk the device wants next",
    )


#: Most products one ProductSeen may score (a camera sends its top few).
MAX_PRODUCT_SCORES = 32
Barcode = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
#: A classifier's probability per barcode (the top few; they add up to at most 1).
ProductScores = Annotated[
    dict[Barcode, Annotated[float, Field(ge=0, le=1)]],
    Field(min_length=1, max_length=MAX_PRODUCT_SCORES),
]


def _check_distribution(scores: dict[str, float]) -> None:
    if sum(scores.values()) > 1.01:
        raise ValueError("scores are probabilities: they add up to at most 1")


class ProductSeen(_DeviceMessage):
    """A product camera saw a product taken from or put back on a shelf.

    ``ts`` is when it was seen (the frame's time), ``shelf_id`` and ``plates`` where (the
    plates when the camera can tell, e.g. from the hand's position), ``scores`` its
    classifier's probability per barcode (the top few; an unlisted product scored at
    most the lowest listed one).  The gateway fuses it with the weight change that
    shelf reports about then.  A product too light for the shelf to weigh is decided
    by the view alone, so the camera says, when it can, whether it was taken or put
    back (``action``).
    """

    shelf_id: DeviceId
    plates: list[Annotated[int, Field(ge=0, le=63)]] | None = Field(default=None, max_length=64)
    scores: ProductScores
    track_id: str | None = Field(default=None, min_length=1, max_length=64)
    session_token: str | None = Field(
        default=None, max_length=128, description="set when the camera knows whose hand it was"
    )
    action: Literal["take", "put_back"] | None = Field(
        default=None, description="set when the camera saw which way the product went"
    )

    @model_validator(mode="after")
    def _a_distribution(self) -> ProductSeen:
        _check_distribution(self.scores)
        return self


class HandoffSeen(_DeviceMessage):
    """A camera saw a product pass from one shopper's hand to another's.

    ``from_token`` gave it, ``to_token`` took it (the sessions the camera's tracker
    follows), ``quantity`` units; ``scores`` the classifier's probability per barcode
    of what was passed, as in :class:`ProductSeen`.  The gateway moves the item
    between the two carts: the one who leaves with it pays for it.
    """

    from_token: str = Field(min_length=1, max_length=128)
    to_token: str = Field(min_length=1, max_length=128)
    quantity: int = Field(default=1, ge=1, le=50)
    scores: ProductScores

    @model_validator(mode="after")
    def _two_shoppers_and_a_distribution(self) -> HandoffSeen:
        if self.from_token == self.to_token:
            raise ValueError("from_token and to_token name the same shopper")
        _check_distribution(self.scores)
        return self


class CommandAck(_DeviceMessage):
    cmd_id: str = Field(min_length=1, max_length=64)
    ok: bool
    detail: str = ""


class Command(BaseModel):
    """Sent by the gateway to one device (strict: we write these ourselves)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cmd_id: str = Field(min_length=1, max_length=64)
    ts: TsMs
    args: dict[str, Any] = Field(default_factory=dict)


class ReceiptLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    barcode: str
    name: str
    quantity: int = Field(gt=0)
    unit_price_minor: int = Field(ge=0)
    line_total_minor: int = Field(ge=0)


class ReceiptMessage(BaseModel):
    """Published by the gateway when a shopper's session closes at the exit gate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    receipt_id: str
    session_token: str
    currency: str
    total_minor: int = Field(ge=0)
    lines: list[ReceiptLine]
    exited_ts: TsMs  # when the exit gate saw the shopper (the gate's clock)
    issued_ts: TsMs


class AlertMessage(BaseModel):
    """Published by the gateway on ``alert_topic(store_id, kind)`` when a staff alert
    is raised, acknowledged or resolved (one alert per kind, device and plate)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alert_id: str
    kind: str  # maintenance, restock, cold_chain, ...
    state: Literal["open", "acked", "resolved"]
    device_id: str
    plate: int | None = None
    detail: dict[str, Any] = Field(default_factory=dict)  # e.g. {"conditions": ["stuck"]}
    raised_ts: TsMs
    ts: TsMs  # when this state began


class OrderMessage(BaseModel):
    """Published by the gateway on ``order_topic(store_id, shopper_id)`` when an online
    order changes state (placed, ready for pick-up, collected): the shopper's app listens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    order_id: str
    shopper_id: str
    state: Literal["placed", "ready", "collected"]
    currency: str
    total_minor: int = Field(ge=0)
    ts: TsMs


#: Inbound message kind -> payload model.  The gateway must register a handler
#: for every key (checked at start and by a test).
INBOUND: dict[MessageKind, type[_DeviceMessage]] = {
    MessageKind.BIRTH: Birth,
    MessageKind.STATE: DeviceState,
    MessageKind.WEIGHT: WeightBatch,
    MessageKind.GATE: GateEvent,
    MessageKind.POSITIONS: Positions,
    MessageKind.HEARTBEAT: Heartbeat,
    MessageKind.REPORTED: Reported,
    MessageKind.CMD_ACK: CommandAck,
    MessageKind.TEMPERATURE: Temperature,
    MessageKind.OTA: OtaStatus,
    MessageKind.PRODUCT: ProductSeen,
    MessageKind.HANDOFF: HandoffSeen,
}

DeviceMessage = (
    Birth
    | DeviceState
    | WeightBatch
    | GateEvent
    | Positions
    | Heartbeat
    | Reported
    | CommandAck
    | Temperature
    | OtaStatus
    | ProductSeen
    | HandoffSeen
)


# --------------------------------------------------------------------------- topics


def _device_base(store_id: str, device_id: str) -> str:
    return f"{PROTOCOL_ROOT}/{store_id}/{device_id}"


def device_topic(store_id: str, device_id: str, kind: MessageKind) -> str:
    """Where a device sends messages of ``kind`` (a command's ack: :func:`command_ack_topic`)."""
    return f"{_device_base(store_id, device_id)}/{kind.value}"


def birth_topic(store_id: str, device_id: str) -> str:
    return device_topic(store_id, device_id, MessageKind.BIRTH)


def state_topic(store_id: str, device_id: str) -> str:
    return device_topic(store_id, device_id, MessageKind.STATE)


def weight_topic(store_id: str, device_id: str) -> str:
    return device_topic(store_id, device_id, MessageKind.WEIGHT)


def gate_topic(store_id: str, device_id: str) -> str:
    return device_topic(store_id, device_id, MessageKind.GATE)


def positions_topic(store_id: str, device_id: str) -> str:
    return device_topic(store_id, device_id, MessageKind.POSITIONS)


def camera_frame_topic(store_id: str, device_id: str) -> str:
    """JPEG frames of a camera (binary, :func:`encode_camera_frame`).  Not under
    ``telemetry/``: the gateway's dispatcher does not subscribe to frames; the vision
    worker does (:func:`camera_frames_filter`)."""
    return f"{_device_base(store_id, device_id)}/video/jpeg"


def camera_frames_filter(store_id: str, device_id: str = "+") -> str:
    return camera_frame_topic(store_id, device_id)


#: Camera frame payload: seq (u64), ts ms (u64), then the JPEG bytes.  Binary, because
#: base64 in JSON would add a third to every frame at 10 fps per camera.
_FRAME_HEADER = struct.Struct(">QQ")
MAX_FRAME_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class CameraFrame:
    seq: int
    ts: int
    jpeg: bytes


def encode_camera_frame(seq: int, ts: int, jpeg: bytes) -> bytes:
    return _FRAME_HEADER.pack(seq, ts) + jpeg


def decode_camera_frame(payload: bytes) -> CameraFrame:
    """Raise :class:`DecodeError` for a payload that is not a camera frame."""
    if len(payload) <= _FRAME_HEADER.size + 2 or len(payload) > MAX_FRAME_BYTES:
        raise DecodeError(f"camera frame of {len(payload)} bytes")
    seq, ts = _FRAME_HEADER.unpack_from(payload)
    jpeg = payload[_FRAME_HEADER.size :]
    if jpeg[:2] != b"\xff\xd8":
        raise DecodeError("camera frame is not a JPEG")
    return CameraFrame(seq, ts, jpeg)


def heartbeat_topic(store_id: str, device_id: str) -> str:
    return device_topic(store_id, device_id, MessageKind.HEARTBEAT)


def reported_topic(store_id: str, device_id: str) -> str:
    return device_topic(store_id, device_id, MessageKind.REPORTED)


def temperature_topic(store_id: str, device_id: str) -> str:
    return device_topic(store_id, device_id, MessageKind.TEMPERATURE)


def ota_topic(store_id: str, device_id: str) -> str:
    return device_topic(store_id, device_id, MessageKind.OTA)


def product_topic(store_id: str, device_id: str) -> str:
    """Where a product camera publishes what it saw taken or put back (``ProductSeen``)."""
    return device_topic(store_id, device_id, MessageKind.PRODUCT)


def handoff_topic(store_id: str, device_id: str) -> str:
    """Where a camera publishes a product it saw pass between shoppers (``HandoffSeen``)."""
    return device_topic(store_id, device_id, MessageKind.HANDOFF)


def alert_topic(store_id: str, kind: str) -> str:
    """Where the gateway publishes staff alerts (maintenance, restock, cold chain)."""
    return f"{PROTOCOL_ROOT}/{store_id}/{GATEWAY_ID}/alert/{kind}"


def command_topic(store_id: str, device_id: str, name: str) -> str:
    return f"{_device_base(store_id, device_id)}/cmd/{name}"


def command_ack_topic(store_id: str, device_id: str, name: str) -> str:
    return f"{command_topic(store_id, device_id, name)}/ack"


def command_filter(store_id: str, device_id: str) -> str:
    """What a device subscribes to: its own commands (not their acks)."""
    return f"{_device_base(store_id, device_id)}/cmd/+"


def receipt_topic(store_id: str, session_token: str) -> str:
    return f"{PROTOCOL_ROOT}/{store_id}/{GATEWAY_ID}/receipt/{session_token}"


def receipts_filter(store_id: str) -> str:
    return f"{PROTOCOL_ROOT}/{store_id}/{GATEWAY_ID}/receipt/+"


def order_topic(store_id: str, shopper_id: str) -> str:
    """Where a shopper's app hears about its online orders (``OrderMessage``)."""
    return f"{PROTOCOL_ROOT}/{store_id}/{GATEWAY_ID}/order/{shopper_id}"


def gateway_state_topic(store_id: str) -> str:
    return state_topic(store_id, GATEWAY_ID)


def is_gateway_topic(topic: str) -> bool:
    """True for topics the gateway itself publishes (its filters also match them)."""
    parts = topic.split("/", 4)
    return len(parts) >= 4 and "/".join(parts[:2]) == PROTOCOL_ROOT and parts[3] == GATEWAY_ID


def store_filter(store_id: str) -> str:
    """Every topic of one store (what the gateway may read and write)."""
    return f"{PROTOCOL_ROOT}/{store_id}/#"


def device_acl_patterns(store_id: str) -> list[tuple[str, str]]:
    """Mosquitto ACL ``pattern`` rules for devices, with ``%u`` = the device's username (= id).

    A device publishes only under its own id, never a command (only the ack of one),
    and reads only its own commands.
    """
    own = f"{PROTOCOL_ROOT}/{store_id}/%u"
    return [
        ("write", f"{own}/birth"),
        ("write", f"{own}/state"),
        ("write", f"{own}/telemetry/+"),
        ("write", f"{own}/event/+"),
        ("write", f"{own}/video/+"),
        ("write", f"{own}/cmd/+/ack"),
        ("read", f"{own}/cmd/+"),
    ]


def gateway_subscriptions(store_id: str) -> list[str]:
    """Topic filters the gateway subscribes to for one store."""
    base = f"{PROTOCOL_ROOT}/{store_id}/+"
    return [
        f"{base}/birth",
        f"{base}/state",
        f"{base}/telemetry/+",
        f"{base}/event/+",
        f"{base}/cmd/+/ack",
    ]


# --------------------------------------------------------------------------- decoding


class DecodeError(ValueError):
    """An inbound message that cannot be accepted; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Inbound:
    store_id: str
    device_id: str
    kind: MessageKind
    message: DeviceMessage
    command: str | None = None  # the command name, for CMD_ACK


def parse_topic(topic: str) -> tuple[str, str, MessageKind, str | None]:
    """Split a device topic into (store_id, device_id, kind, command name)."""
    parts = topic.split("/")
    if len(parts) < 5 or "/".join(parts[:2]) != PROTOCOL_ROOT:
        raise DecodeError(f"topic {topic!r} is not under {PROTOCOL_ROOT}/{{store}}/{{device}}/")
    store_id, device_id, rest = parts[2], parts[3], parts[4:]
    if device_id == GATEWAY_ID:
        raise DecodeError(f"topic {topic!r} is a gateway topic, not a device topic")
    command: str | None = None
    if len(rest) == 3 and rest[0] == "cmd" and rest[2] == "ack":
        kind_text, command = MessageKind.CMD_ACK.value, rest[1]
    else:
        kind_text = "/".join(rest)
    try:
        kind = MessageKind(kind_text)
    except ValueError:
        raise DecodeError(f"unknown message type {kind_text!r} in topic {topic!r}") from None
    return store_id, device_id, kind, command


def decode(topic: str, payload: bytes) -> Inbound:
    """Decode one inbound MQTT message or raise :class:`DecodeError` with a reason."""
    store_id, device_id, kind, command = parse_topic(topic)
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError(f"payload is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DecodeError(f"payload must be a JSON object, got {type(data).__name__}")
    try:
        message = INBOUND[kind].model_validate(data)
    except ValidationError as exc:
        raise DecodeError(f"invalid {kind.value}: {_summarise(exc)}") from None
    if message.device_id is not None and message.device_id != device_id:
        raise DecodeError(f"payload says device {message.device_id!r}, topic says {device_id!r}")
    return Inbound(store_id, device_id, kind, message, command)  # type: ignore[arg-type]


def _summarise(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "(payload)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def encode(message: BaseModel) -> bytes:
    """Serialise any protocol model to its JSON wire form."""
    return message.model_dump_json().encode()
