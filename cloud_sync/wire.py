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
SYNC_PATH = f"{API_PREFIX}/sync"  # down-sync: GET with the store key, POST .../{kind} as admin

# Event kinds HQ understands beyond storing them.  Streams keep order per stream.
KIND_TRANSACTION = "transaction"
KIND_REFUND = "refund"
KIND_ADJUSTMENT = "adjustment"  # a change to an issued receipt (charge or refund)
KIND_DEVICE_STATE = "device_state"
KIND_STOCK_LEVEL = "stock_level"
KIND_ALERT = "alert"
KIND_TELEMETRY = "telemetry"
KIND_HEARTBEAT = "heartbeat"  # a device's heartbeat (telemetry class)
KIND_TEMPERATURE = "temperature"  # a fridge reading (telemetry class)
KIND_SYNC_REPORT = "sync_report"  # the gateway applied, refused or rolled back a document

STREAM_TRANSACTIONS = "transactions"
STREAM_DEVICES = "devices"
STREAM_STOCK = "stock"
STREAM_ALERTS = "alerts"
STREAM_TELEMETRY = "telemetry"
STREAM_SYNC = "sync"

#: Kinds that are money: never evicted from a store's outbox.
MONEY_KINDS = frozenset({KIND_TRANSACTION, KIND_REFUND, KIND_ADJUSTMENT})

Ident = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Payload(BaseModel):
    """An event's payload: keys HQ does not know yet are ignored (newer gateways)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


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


class TransactionPayload(_Payload):
    """A receipt issued at the exit gate (kind ``transaction``)."""

    receipt_id: Ident
    session_token: str = Field(max_length=200)
    currency: Currency
    total_minor: int = Field(ge=0)
    issued_ms: int
    lines: list[TransactionLine] = []


class StockLevelPayload(_Payload):
    """The units of one product on hand in the store now (kind ``stock_level``)."""

    barcode: Name
    quantity: int
    name: str | None = Field(default=None, max_length=200)
    low_threshold: int | None = Field(default=None, ge=0)


class DeviceStatePayload(_Payload):
    device_id: Name
    state: str
    reason: str = ""
    device_type: str | None = None


class AlertPayload(_Payload):
    """A staff alert raised, changed, acknowledged or resolved (kind ``alert``)."""

    alert_id: Ident
    kind: Name
    state: Literal["open", "acked", "resolved"]
    device_id: str | None = Field(default=None, max_length=64)
    plate: int | None = None
    detail: dict[str, Any] = {}
    raised_ms: int
    acked_ms: int | None = None
    resolved_ms: int | None = None


class AdjustmentPayload(_Payload):
    """A change to an issued receipt after review (kinds ``adjustment``: an extra
    charge, ``refund``: money back).  ``amount_minor`` is signed (negative: refund)."""

    adjustment_id: Ident
    receipt_id: Ident
    review_id: str | None = Field(default=None, max_length=64)
    barcode: Name
    name: str = Field(max_length=200)
    quantity: int
    unit_price_minor: int = Field(ge=0)
    amount_minor: int
    currency: Currency
    created_ms: int


class DeviceTelemetryPayload(_Payload):
    """A device heartbeat (kind ``heartbeat``) or a fridge reading (``temperature``)."""

    device_id: Name
    device_type: str | None = None
    firmware: str | None = None
    battery_pct: float | None = None
    celsius: float | None = None


# --------------------------------------------------------------------------- down-sync

DocKind = Literal["catalog", "planogram", "prices", "config"]
#: Every kind of document HQ publishes, in the order a gateway applies them.
DOC_KINDS: tuple[DocKind, ...] = ("catalog", "planogram", "prices", "config")
SyncStatus = Literal["applied", "refused", "rolled_back"]
#: The scope of a document published for every store.
ALL_STORES = "*"

PriceMinor = Annotated[int, Field(ge=0)]


class PricesBody(_Model):
    """``prices``: barcode -> price in minor units."""

    prices: dict[Name, PriceMinor] = Field(min_length=1)


class CatalogBody(_Model):
    """``products``: product records (barcode, name, unit_weight_g, weight_sd_g,
    price_minor) added to, or replacing those of, the planogram's products."""

    products: list[dict[str, Any]] = Field(min_length=1)


class PlanogramBody(BaseModel):
    """A whole planogram (products, shelves, facings; ``devices.layout.Planogram``);
    HQ checks its outline, the gateway all of it."""

    model_config = ConfigDict(frozen=True, extra="allow")

    products: list[dict[str, Any]] = Field(min_length=1)
    shelves: list[dict[str, Any]] = Field(min_length=1)


#: HQ's own check of a document's outline, by kind (``config`` is the gateway's to judge).
BODY_MODELS: dict[str, type[BaseModel]] = {
    "prices": PricesBody,
    "catalog": CatalogBody,
    "planogram": PlanogramBody,
}


class PublishRequest(_Model):
    """A new version of a document, for one store or (``store_id`` None) for all."""

    store_id: Ident | None = None
    body: dict[str, Any]
    note: str | None = Field(default=None, max_length=500)


class SyncDocument(_Model):
    kind: DocKind
    version: int = Field(ge=1, description="grows with every document of this kind")
    scope: str = Field(description="'*' (every store) or the store id")
    published_ms: int
    note: str | None = None
    body: dict[str, Any]


class SyncChanges(_Model):
    """The newest document of each kind for a store, where newer than its version."""

    store_id: str
    documents: list[SyncDocument]


class SyncReportPayload(_Payload):
    """What the gateway did with a document (kind ``sync_report``)."""

    kind: DocKind
    version: int = Field(ge=1)
    status: SyncStatus
    reason: str = Field(default="", max_length=2000)
    running_version: int | None = Field(
        default=None, description="the version of this kind the gateway runs now"
    )


class SyncKindState(_Model):
    """One kind of document at one store, as HQ sees it."""

    published: int | None = Field(description="the newest version meant for this store")
    running: int | None = Field(description="the version the gateway reports running")
    status: SyncStatus | None = Field(description="the gateway's last report")
    status_version: int | None
    reason: str | None


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
    alerts_open: int = Field(default=0, description="alerts open or acknowledged at the store")
    sync: dict[str, SyncKindState] = Field(
        default={}, description="per document kind: published and running versions"
    )


class Fleet(_Model):
    now_ms: int
    stale_after_s: float
    stores: list[FleetStore]


class StoreKey(_Model):
    store_id: str
    api_key: str
