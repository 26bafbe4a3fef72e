"""Gateway configuration: strict pydantic models (a typo is an error), YAML + env.

Environment overrides use ``STOREEDGE_<SECTION>__<KEY>`` (for example
``STOREEDGE_MQTT__PASSWORD`` or ``STOREEDGE_MQTT__BROKER``); secrets belong
there, never in the YAML that is committed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from devices.calibration import DEFAULT_FULL_SCALE_RAW
from devices.ota import MAX_IMAGE_BYTES, load_public_key
from devices.protocol import DeviceId
from vision.config import VisionConfig

ENV_PREFIX = "STOREEDGE_"
ENV_NESTING = "__"
#: Environment variables under the prefix that are not config keys.
_ENV_NOT_CONFIG = {
    "STOREEDGE_CONFIG_DIR",
    "STOREEDGE_LOG_LEVEL",
    "STOREEDGE_AIFI_DIR",
    "STOREEDGE_HQ_ADMIN_TOKEN",  # HQ's own secret, not the gateway's
}
#: Environment variables that are config keys under another name.
_ENV_ALIASES = {"STOREEDGE_HQ_STORE_KEY": ("hq", "api_key")}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttConfig(_Strict):
    broker: str = Field(
        default="embedded",
        description="'embedded' starts an amqtt broker in-process; else mqtt://host:port",
    )
    embedded_host: str = "127.0.0.1"
    embedded_port: int = Field(default=1883, ge=0, le=65535, description="0 picks a free port")
    client_id: str = Field(default="storeedge-gateway", min_length=1, max_length=64)
    username: str | None = None
    password: SecretStr | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    reconnect_min_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    qos: Literal[0, 1] = 1
    max_queued_messages: int = Field(default=0, ge=0, description="0 = unlimited (paho)")

    @field_validator("broker")
    @classmethod
    def _broker(cls, value: str) -> str:
        if value == "embedded":
            return value
        parts = urlsplit(value)
        if parts.scheme not in {"mqtt", "tcp"} or not parts.hostname:
            raise ValueError("must be 'embedded' or a URL like mqtt://host:1883")
        return value

    def broker_address(self) -> tuple[str, int]:
        if self.broker == "embedded":
            return self.embedded_host, self.embedded_port
        parts = urlsplit(self.broker)
        return parts.hostname or "localhost", parts.port or 1883


class DatabaseConfig(_Strict):
    path: Path = Path("storeedge-data/gateway.db")


class ApiConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    staff_token: SecretStr | None = Field(
        default=None,
        description="bearer token for staff actions (set STOREEDGE_API__STAFF_TOKEN); "
        "without one, staff actions are refused",
    )
    hq_token: SecretStr | None = Field(
        default=None,
        description="bearer token of HQ (set STOREEDGE_API__HQ_TOKEN): store-wide reads, "
        "prices, device settings and firmware; without one, HQ is refused",
    )


class DetectorConfig(_Strict):
    """Weight-event detection: a plate is settled when its samples stop moving."""

    settle_samples: int = Field(default=18, ge=3, description="samples that must agree")
    settle_sd_g: float = Field(default=4.0, gt=0, description="max spread of a settled plate")
    min_delta_g: float = Field(default=8.0, gt=0, description="smallest change reported")
    neighbour_plates: int = Field(
        default=1, ge=0, description="changes on plates this close merge into one shelf event"
    )


class InferenceConfig(_Strict):
    max_quantity: int = Field(default=6, ge=1, le=50)
    min_confidence: float = Field(
        default=0.6, ge=0, le=1, description="below this share of likelihood: review"
    )
    neighbour_prior: float = Field(
        default=0.2, ge=0, le=1, description="prior of products on neighbouring plates"
    )
    shelf_prior: float = Field(
        default=0.02, ge=0, le=1, description="prior of other products on the same shelf"
    )
    vision_weight: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="how far a product camera's scores re-weight the hypotheses (0: ignored)",
    )
    vision_confirm_below: float = Field(
        default=0.9,
        ge=0,
        le=1,
        description="while product cameras report, an event whose best product by weight "
        "has less than this confidence waits for a camera's view (up to vision_hold_ms)",
    )
    vision_hold_ms: int = Field(
        default=1500,
        ge=0,
        le=10_000,
        description="an unclear event waits this long for a product camera's view "
        "(only while cameras report)",
    )


class AssociationConfig(_Strict):
    """Which shopper made a shelf event: the nearest tracked one, if clearly nearest."""

    reach_m: float = Field(default=1.6, gt=0, description="farther than this: nobody")
    margin_m: float = Field(
        default=0.2, ge=0, description="runner-up closer than best + margin: review"
    )
    window_ms: int = Field(default=1000, ge=0, description="positions this far around the event")


class GateConfig(_Strict):
    device_id: DeviceId
    direction: Literal["entry", "exit"]


class DevicesConfig(_Strict):
    offline_after_s: float = Field(
        default=30.0, gt=0, description="no message for this long: the device is offline"
    )
    missed_heartbeats: int = Field(
        default=3,
        ge=1,
        description="a device that reports its heartbeat_s is offline after this many missed",
    )


class PlateHealthConfig(_Strict):
    """When a load cell needs maintenance: stuck, saturated, too noisy or drifting."""

    check_every: int = Field(default=10, ge=1, description="look at every n-th weight batch")
    stuck_after_s: float = Field(default=30.0, gt=0, description="zero variance this long")
    full_scale_raw: float = Field(
        default=DEFAULT_FULL_SCALE_RAW, gt=0, description="raw at/over it: saturated"
    )
    saturated_after_s: float = Field(default=2.0, gt=0)
    noisy_sd_g: float = Field(default=10.0, gt=0, description="spread of a batch above this")
    noisy_after_s: float = Field(default=20.0, gt=0, description="... for this long: noisy")
    quiet_range_g: float = Field(
        default=12.0, gt=0, description="batches spread less than this show the drift"
    )
    drift_window_s: float = Field(default=120.0, gt=0, description="drift rate measured over")
    max_drift_g_per_min: float = Field(default=5.0, gt=0)
    clear_after_s: float = Field(
        default=30.0, ge=0, description="a flag clears once its condition is gone this long"
    )


class CalibrationConfig(_Strict):
    """The guided calibration flow: how a settled raw reading is taken."""

    settle_samples: int = Field(default=60, ge=8, le=6000, description="one measurement")
    measure_timeout_s: float = Field(
        default=15.0, gt=0, le=120, description="a plate not settled by then: try again"
    )


class PlatesConfig(_Strict):
    health: PlateHealthConfig = PlateHealthConfig()
    calibration: CalibrationConfig = CalibrationConfig()


class OtaConfig(_Strict):
    """Firmware updates: which signing key to trust and how carefully to roll out."""

    trusted_public_key: str | None = Field(
        default=None,
        description="the firmware signing key (ed25519): base64 of its 32 bytes, or PEM; "
        "without it (or the file below) no image is accepted",
    )
    trusted_public_key_file: Path | None = Field(
        default=None, description="... or a PEM/base64 file holding it (relative: to the cwd)"
    )
    canary_share: float = Field(
        default=0.1, gt=0, le=1, description="share of devices updated first (at least one)"
    )
    health_window_s: float = Field(
        default=300.0, gt=0, description="an updated device must stay healthy this long"
    )
    boot_timeout_s: float = Field(
        default=180.0, gt=0, description="to install, reboot and come back on the new version"
    )
    missed_heartbeats: int = Field(
        default=3, ge=1, description="this many heartbeat intervals of silence fail the check"
    )
    max_parallel: int = Field(default=10, ge=1, description="devices updating at once")
    max_image_bytes: int = Field(
        default=MAX_IMAGE_BYTES,
        ge=1,
        le=MAX_IMAGE_BYTES,
        description="largest firmware image taken (above 256 KiB it is sent in chunks)",
    )

    @field_validator("trusted_public_key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        if value is not None:
            load_public_key(value)  # a ValueError names what is wrong with it
        return value


class EslConfig(_Strict):
    """An electronic shelf label and the product (planogram barcode) it shows."""

    device_id: DeviceId
    barcode: str = Field(min_length=1, max_length=64)


class HqConfig(_Strict):
    """Store-and-forward to HQ: without a URL and a store key nothing is sent."""

    url: str | None = Field(default=None, description="https://hq.example.com")
    api_key: SecretStr | None = Field(
        default=None, description="the store's key (STOREEDGE_HQ_STORE_KEY)"
    )
    ca_file: Path | None = Field(default=None, description="CA bundle for HQ's certificate")
    outbox_budget_mb: float = Field(
        default=64.0, gt=0, description="disk budget of the outbox; telemetry is evicted first"
    )
    heartbeat_s: float = Field(default=15.0, gt=0)
    batch_max_age_s: float = Field(default=1.0, ge=0, description="ship a partial batch then")
    sync_poll_s: float = Field(
        default=30.0, gt=0, description="how often HQ is asked for new catalog, prices, ..."
    )
    config_probation_s: float = Field(
        default=60.0,
        ge=0,
        description="a configuration from HQ that makes the gateway unhealthy within this "
        "long is rolled back",
    )


class RestockConfig(_Strict):
    """Restock alerts per lane (the plates of one product on a shelf), from its weight."""

    enabled: bool = True
    default_share: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="a lane whose planogram plates give no restock_at alerts at this share "
        "of its planogram stock (rounded up; 0: never)",
    )
    refill_units: int = Field(
        default=2,
        ge=1,
        description="hysteresis: an alert resolves once the lane holds restock_at + this many",
    )


class ColdUnitConfig(_Strict):
    """One fridge or freezer sensor and its limit."""

    device_id: DeviceId
    name: str | None = Field(default=None, max_length=64, description="e.g. 'dairy fridge'")
    max_c: float = Field(ge=-60, le=40, description="above this the goods are at risk")
    after_s: float | None = Field(
        default=None, gt=0, description="how long above max_c before the alert (default below)"
    )


class ColdChainConfig(_Strict):
    """Cold-chain alerts: a unit that stays above its limit for too long."""

    default_max_c: float = Field(
        default=8.0, ge=-60, le=40, description="for fridge sensors not listed under units"
    )
    after_s: float = Field(default=900.0, gt=0, description="above the limit this long: alert")
    clear_margin_c: float = Field(
        default=0.5, ge=0, description="the alert resolves at max_c minus this, or colder"
    )
    units: list[ColdUnitConfig] = Field(
        default_factory=list, description="known units (fridge sensors) with their limits"
    )

    @field_validator("units")
    @classmethod
    def _unique(cls, units: list[ColdUnitConfig]) -> list[ColdUnitConfig]:
        ids = [u.device_id for u in units]
        if len(ids) != len(set(ids)):
            raise ValueError("device ids repeat")
        return units


class DashboardConfig(_Strict):
    trace_s: float = Field(
        default=60.0, gt=0, le=600, description="seconds of weight trace kept per shelf"
    )


class GuidanceConfig(_Strict):
    """Where things are on the floor plan (metres), for product search and walking routes.

    Plates with x/y in the planogram stand where they say; the others are laid out
    by default: shelf n along a row of aisles (``aisle_spacing_m`` apart), plates
    ``plate_spacing_m`` apart along it, ``shelf_origin`` the first plate of shelf 0.
    """

    entrance: tuple[float, float] = Field(default=(0.0, 0.0), description="entry gate, x/y")
    exit: tuple[float, float] | None = Field(
        default=None, description="exit gate (default: next to the entrance)"
    )
    shelf_origin: tuple[float, float] = (1.0, 1.5)
    aisle_spacing_m: float = Field(default=2.0, gt=0)
    plate_spacing_m: float = Field(default=0.5, gt=0)
    cell_m: float = Field(default=0.25, gt=0, le=2, description="walkable grid resolution")
    clearance_m: float = Field(
        default=0.45, ge=0, description="a shopper stands this far in front of a shelf"
    )
    shelves: dict[DeviceId, tuple[float, float, float, float]] = Field(
        default_factory=dict,
        description="shelf device id -> x0, y0, x1, y1: where its plate 0 and last plate "
        "stand (overrides the default layout)",
    )


class PaymentsConfig(_Strict):
    provider: Literal["simulated", "none"] = Field(
        default="simulated",
        description="who charges the shopper's card ('none': receipts are not charged)",
    )
    decline_over_minor: int | None = Field(
        default=None, ge=0, description="simulated provider: decline charges above this"
    )


class ShoppersConfig(_Strict):
    """The shopper app: check-in tokens, guidance, orders and payments."""

    secret: SecretStr | None = Field(
        default=None,
        description="signs shopper and check-in tokens (STOREEDGE_SHOPPERS__SECRET, 16+ "
        "bytes); without one a random secret is made at start (tokens die on restart)",
    )
    verify_checkin: bool = Field(
        default=True,
        description="the entry gate accepts only signed, unexpired, unused check-in tokens "
        "(off only for replays of recorded data and benchmarks)",
    )
    checkin_ttl_s: float = Field(default=300.0, gt=0, le=86_400)
    token_ttl_s: float = Field(default=30 * 86_400.0, gt=0, description="app bearer tokens")
    guidance: GuidanceConfig = GuidanceConfig()
    payments: PaymentsConfig = PaymentsConfig()

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < 16:
            raise ValueError("must be at least 16 bytes")
        return value


class GatewayConfig(_Strict):
    store_id: DeviceId
    planogram: Path = Field(description="planogram YAML, relative to the config file")
    gates: list[GateConfig] = Field(min_length=1)
    trackers: list[DeviceId] = Field(
        default_factory=list, description="camera trackers publishing shopper positions"
    )
    esls: list[EslConfig] = Field(
        default_factory=list, description="shelf labels: each shows one product's price"
    )
    mqtt: MqttConfig = MqttConfig()
    database: DatabaseConfig = DatabaseConfig()
    api: ApiConfig = ApiConfig()
    detector: DetectorConfig = DetectorConfig()
    inference: InferenceConfig = InferenceConfig()
    association: AssociationConfig = AssociationConfig()
    devices: DevicesConfig = DevicesConfig()
    plates: PlatesConfig = PlatesConfig()
    ota: OtaConfig = OtaConfig()
    hq: HqConfig = HqConfig()
    shoppers: ShoppersConfig = ShoppersConfig()
    vision: VisionConfig = VisionConfig()
    restock: RestockConfig = RestockConfig()
    cold_chain: ColdChainConfig = ColdChainConfig()
    dashboard: DashboardConfig = DashboardConfig()


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the key."""


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name in _ENV_NOT_CONFIG:
            continue
        if name in _ENV_ALIASES:
            section, key = _ENV_ALIASES[name]
            overrides.setdefault(section, {})[key] = value
            continue
        path = name[len(ENV_PREFIX) :].lower().split(ENV_NESTING)
        node = overrides
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return overrides


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _format(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: {exc.error_count()} error(s)"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {key}: {err['msg']}")
    return "\n".join(lines)


def parse_config(
    data: Mapping[str, Any],
    *,
    base_dir: Path,
    env: Mapping[str, str] | None = None,
    source: str = "config",
) -> GatewayConfig:
    merged = _merge(dict(data), _env_overrides(os.environ if env is None else env))
    try:
        cfg = GatewayConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_format(exc, source)) from None
    planogram = cfg.planogram if cfg.planogram.is_absolute() else base_dir / cfg.planogram
    return cfg.model_copy(update={"planogram": planogram.resolve()})


def load_config(path: Path, env: Mapping[str, str] | None = None) -> GatewayConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return parse_config(data, base_dir=path.parent, env=env, source=str(path))


def default_config_dir() -> Path:
    """The repository's ``config/`` folder (or ``STOREEDGE_CONFIG_DIR``)."""
    override = os.environ.get("STOREEDGE_CONFIG_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "config"


def default_config_path() -> Path:
    return default_config_dir() / "store.yaml"
