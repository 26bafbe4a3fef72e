"""The gateway's HTTP client for HQ: gzip-compressed JSON over HTTPS, one store key.

Errors are sorted by what the caller should do about them:

* :class:`TransientError`: the network, a timeout, HQ restarting (5xx, 429, 408):
  retry after a backoff; nothing is lost, the rows stay in the outbox.
* :class:`BatchTooLarge` (413): send fewer rows at once.
* :class:`RefusedError`: HQ refused the request (a wrong key, 4xx): retrying the
  same request will not help until someone fixes the configuration; the sender
  retries slowly and says so loudly.

:class:`HqConnection` (where HQ is, the store's key) and :class:`HqWorker` (one
background thread with its client, backoff, start and stop) are what the sender
and the down-sync fetcher share.
"""

from __future__ import annotations

import gzip
import ipaddress
import logging
import random
import ssl
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from cloud_sync.wire import (
    HEARTBEAT_PATH,
    INGEST_PATH,
    SYNC_PATH,
    GatewayHeartbeat,
    IngestAck,
    IngestBatch,
    SyncChanges,
)

log = logging.getLogger(__name__)

USER_AGENT = "storeedge-gateway/1"
#: Bodies smaller than this are sent as they are.
GZIP_MIN_BYTES = 512

_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class HqError(Exception):
    """A request to HQ failed."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TransientError(HqError):
    """Worth retrying after a backoff."""

    def __init__(self, message: str, status: int | None = None, retry_after_s: float = 0) -> None:
        super().__init__(message, status)
        self.retry_after_s = retry_after_s


class BatchTooLarge(HqError):
    """HQ answered 413: the batch must be smaller."""


class RefusedError(HqError):
    """HQ refused the request (authentication, a malformed batch)."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, allow_insecure: bool = False) -> str:
    """HQ's base URL: https, or http on the loopback interface (tests, the demo)."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"HQ URL must be http(s)://host[:port][/prefix], not {url!r}")
    if parts.scheme == "http" and not (allow_insecure or _is_loopback(parts.hostname)):
        raise ValueError(
            f"HQ URL {url!r} is plain http to another machine: use https "
            "(or allow_insecure for a trusted network)"
        )
    return url.rstrip("/")


@dataclass
class Backoff:
    """Exponential backoff with jitter: the n-th delay in a row is drawn from
    [cap/2, cap] with cap = min(max_s, base_s * 2**(n-1))."""

    base_s: float = 0.5
    max_s: float = 60.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next_delay(self) -> float:
        self.failures += 1
        cap = min(self.max_s, self.base_s * float(2 ** min(self.failures - 1, 30)))
        return cap / 2 + self.rng.uniform(0, cap / 2)

    def reset(self) -> None:
        self.failures = 0


class HqClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        ca_file: Path | None = None,
        timeout_s: float = 10.0,
        allow_insecure: bool = False,
    ) -> None:
        self.base_url = check_url(base_url, allow_insecure=allow_insecure)
        verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            verify = ssl.create_default_context(cafile=str(ca_file))
        self._http = httpx.Client(
            timeout=timeout_s,
            verify=verify,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": USER_AGENT},
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def ingest(self, batch: IngestBatch) -> IngestAck:
        response = self._post(INGEST_PATH, batch)
        try:
            return IngestAck.model_validate_json(response.content)
        except ValueError as exc:  # HQ answered 200 with something else: try again later
            raise TransientError(f"HQ's answer to a batch is not an ack: {exc}") from None

    def heartbeat(self, heartbeat: GatewayHeartbeat) -> None:
        self._post(HEARTBEAT_PATH, heartbeat)

    def changes(self, since: dict[str, int]) -> SyncChanges:
        """Down-sync: the documents newer than ``since`` (kind -> version)."""
        try:
            response = self._http.get(self.base_url + SYNC_PATH, params=since)
        except httpx.TransportError as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from None
        self._check(response)
        try:
            return SyncChanges.model_validate_json(response.content)
        except ValueError as exc:
            raise TransientError(f"HQ's answer to a sync request is not valid: {exc}") from None

    def _post(self, path: str, model: BaseModel) -> httpx.Response:
        body = model.model_dump_json().encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if len(body) >= GZIP_MIN_BYTES:
            body = gzip.compress(body, compresslevel=6)
            headers["Content-Encoding"] = "gzip"
        try:
            response = self._http.post(self.base_url + path, content=body, headers=headers)
        except httpx.TransportError as exc:  # connect, read, write, timeouts, TLS
            raise TransientError(f"{type(exc).__name__}: {exc}") from None
        self._check(response)
        return response

    @staticmethod
    def _check(response: httpx.Response) -> None:
        status = response.status_code
        if status < 300:
            return
        detail = response.text[:200]
        if status in _RETRYABLE_STATUS:
            raise TransientError(f"HQ answered {status}: {detail}", status, _retry_after(response))
        if status == 413:
            raise BatchTooLarge(f"HQ answered 413: {detail}", status)
        raise RefusedError(f"HQ answered {status}: {detail}", status)


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "0")))
    except ValueError:
        return 0.0


class HqConnection(BaseModel):
    """Where HQ is and how the store reaches it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hq_url: str = Field(description="https://hq.example.com (http only on loopback)")
    store_id: str = Field(min_length=1)
    api_key: SecretStr
    ca_file: Path | None = Field(default=None, description="CA bundle for HQ's certificate")
    allow_insecure: bool = Field(default=False, description="plain http beyond loopback")
    request_timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("hq_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return value.rstrip("/")

    def new_client(self) -> HqClient:
        return HqClient(
            self.hq_url,
            self.api_key.get_secret_value(),
            ca_file=self.ca_file,
            timeout_s=self.request_timeout_s,
            allow_insecure=self.allow_insecure,
        )


class HqWorker(ABC):
    """One background thread talking to HQ: its client, backoff, start and stop.

    Subclasses name themselves (``_what``: the thread is ``hq-<what>``) and write
    :meth:`step`, one round that returns the seconds until the next.  The loop runs
    rounds until stopped; a round that fails unexpectedly (a bug, a broken database)
    is logged and retried after a backoff, so the thread never dies of it.
    """

    _what: str = "worker"

    def __init__(
        self,
        connection: HqConnection,
        backoff_base_s: float,
        backoff_max_s: float,
        rng: random.Random | None,
    ) -> None:
        check_url(connection.hq_url, allow_insecure=connection.allow_insecure)
        self._connection = connection
        self._backoff = Backoff(backoff_base_s, backoff_max_s, rng or random.Random())
        self._client: HqClient | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._refused_logged = False

    def _ensure_client(self) -> HqClient:
        if self._client is None:
            self._client = self._connection.new_client()
        return self._client

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"the {self._what} is already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"hq-{self._what}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop after the request in flight (if any) and close the client."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._client is not None:
            self._client.close()
            self._client = None

    @abstractmethod
    def step(self) -> float: ...

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self.step()
            except Exception:  # a bug or a broken database: say so, keep the thread alive
                log.exception("hq %s: unexpected failure; retrying", self._what)
                wait = self._backoff.next_delay()
            if wait > 0:
                self._wake.wait(wait)
            self._wake.clear()
