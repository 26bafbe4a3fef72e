"""The HTTP API between a store's gateway and HQ: request and answer models.

Everything a gateway sends leaves its outbox as an :class:`OutboxEvent` with a
stable ``event_id``; HQ stores each (store, event id) once and acknowledges the
ids it holds.  Money is in integer minor units.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

#: The API's version prefix (HQ's routes and the sender's requests).
API_PREFIX = "/api/v1"
INGEST_PATH = f"{API_PREFIX}/ingest"
HEARTBEAT_PATH = f"{API_PREFIX}/heartbeat"

# Event kinds HQ understands beyond storing them.  Streams keep order per stream.
KIND_TRANSACTION = "transaction"
KIND_REFUND = "refund"
KIND_ADJUSTMENT = "adjustment"  # a change to an issued receipt (charge or refund)
KIND_DEVICE_STATE = "device_state"
KIND_STOCK_LEVEL = "stock_level"
KIND_ALERT = "alert"
KIND_TELEMETRY = "telemetry"

STREAM_TRANSACTIONS = "transactions"
STREAM_DEVICES = "devices"
STREAM_STOCK = "stock"
STREAM_ALERTS = "alerts"
STREAM_TELEMETRY = "telemetry"

#: Kinds that are money: never evicted from a store's outbox.
MONEY_KINDS = frozenset({KIND_TRANSACTION, KIND_REFUND, KIND_ADJUSTMENT})

Ident = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OutboxEvent(_Model):
    """One outbox row as it travels to HQ."""

    event_id: Ident
    stream: Name
    kind: Name
    seq: int = Field(ge=0, description="the gateway's outbox position (order per stream)")
    ts_ms: int = Field(description="when the event happened (the gateway's clock)")
    created_ms: int = Field(description="when the row was written to the outbox (wall clock)")
    payload: dict[str, Any]


class IngestBatch(_Model):
    store_id: Ident
    batch_id: Ident
    events: list[OutboxEvent] = Field(max_length=10_000)


class RejectedEvent(_Model):
    event_id: str
    reason: str


class IngestAck(_Model):
    """``acked``: every event id of the batch that HQ now holds (new or seen before)
    or has set aside as rejected; the gateway marks exactly these sent."""

    acked: list[str]
    stored: int
    duplicates: int
    rejected: list[RejectedEvent] = []


class Backlog(_Model):
    rows: int = Field(ge=0, description="unsent outbox rows")
    bytes: int = Field(ge=0, description="their size")
    oldest_unsent_age_s: float | None = Field(description="None when nothing is unsent")
    last_acked_seq: int | None = Field(description="the highest outbox seq HQ acknowledged")
    evicted_rows: int = Field(ge=0, description="rows evicted by the disk budget, ever")
    evicted_bytes: int = Field(ge=0)
    held_bytes: int = Field(ge=0, description="bytes the outbox holds, sent rows included")
    budget_bytes: int = Field(ge=0)


class GatewayHeartbeat(_Model):
    store_id: Ident
    sent_ms: int
    versions: dict[str, str] = {}
    devices: dict[str, int] = Field(default={}, description="device counts by state")
    backlog: Backlog


class GatewayStatus(_Model):
    """What the gateway adds to each heartbeat (the sender adds the backlog)."""

    versions: dict[str, str] = {}
    devices: dict[str, int] = {}


# --------------------------------------------------------------------------- payloads


class TransactionLine(_Model):
    barcode: Name
    name: str = Field(max_length=200)
    quantity: int = Field(gt=0)
    unit_price_minor: int = Field(ge=0)
    line_total_minor: int = Field(ge=0)


class TransactionPayload(BaseModel):
    """A receipt issued at the exit gate (kind ``transaction``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    receipt_id: Ident
    session_token: str = Field(max_length=200)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    total_minor: int = Field(ge=0)
    issued_ms: int
    lines: list[TransactionLine] = []


class StockLevelPayload(BaseModel):
    """The units of one product on hand in the store now (kind ``stock_level``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    barcode: Name
    quantity: int
    name: str | None = Field(default=None, max_length=200)
    low_threshold: int | None = Field(default=None, ge=0)


class DeviceStatePayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    device_id: Name
    state: str
    reason: str = ""


# --------------------------------------------------------------------------- HQ answers


Health = Literal["ok", "degraded", "stale", "unknown"]


class FleetStore(_Model):
    store_id: str
    name: str | None
    health: Health
    health_reason: str
    last_heartbeat_ms: int | None = Field(description="when HQ received it (HQ's clock)")
    heartbeat_age_s: float | None
    backlog_rows: int | None
    backlog_bytes: int | None
    oldest_unsent_age_s: float | None
    last_acked_seq: int | None
    evicted_rows: int | None
    versions: dict[str, str]
    devices: dict[str, int]
    devices_online: int | None
    devices_offline: int | None
    transactions: int


class Fleet(_Model):
    now_ms: int
    stale_after_s: float
    stores: list[FleetStore]


class StoreKey(_Model):
    store_id: str
    api_key: str
