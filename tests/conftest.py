"""Shared test fixtures and hooks.

* ``mosquitto``: a real Mosquitto broker for the whole session (integration tests).
* ``unique_store_id``: a fresh store id per test, so tests never share a topic space.
* Every test under ``tests/integration/`` gets the ``integration`` marker.
* A test FAILS when one of our packages logged at ERROR or above while it ran
  (an error that is only logged is still an error).  Opt out with
  ``@pytest.mark.allow_error_logs`` where the error log is what the test expects.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge.mqtt.mosquitto import MosquittoError, find_mosquitto, start_loopback

TESTS_DIR = Path(__file__).resolve().parent
INTEGRATION_DIR = TESTS_DIR / "integration"

#: Loggers whose ERROR records fail a test (each name and its children).
WATCHED_LOGGERS = ("edge", "devices", "firmware_sim", "cloud_sync", "vision")

# --------------------------------------------------------------------------- hooks


def pytest_configure(config: pytest.Config) -> None:
    # pyproject.toml runs with --strict-markers; register the markers this file owns.
    config.addinivalue_line(
        "markers",
        "allow_error_logs: the test expects ERROR log records from our packages "
        "(they do not fail it)",
    )


@pytest.hookimpl(tryfirst=True)  # before -m deselection, so `-m integration` sees the marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(INTEGRATION_DIR):
            item.add_marker(pytest.mark.integration)


# --------------------------------------------------------------------------- broker


@dataclass(frozen=True, slots=True)
class Broker:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A real Mosquitto on a free port of 127.0.0.1 for the whole test session."""
    if find_mosquitto() is None:
        pytest.fail(
            "mosquitto is not installed (looked on PATH and in /usr/sbin); the integration "
            "tests need a real broker: apt-get install -y mosquitto mosquitto-clients",
            pytrace=False,
        )
    try:
        broker = start_loopback(tmp_path_factory.mktemp("mosquitto"))
    except MosquittoError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield Broker(broker.host, broker.port)
    finally:
        broker.stop()


@pytest.fixture
def unique_store_id() -> str:
    """A store id no other test uses, so each test has its own topic space."""
    return f"test-{uuid.uuid4().hex[:8]}"


# --------------------------------------------------------------------------- error logs


class _ErrorLogCollector(logging.Handler):
    """Collects ERROR+ records of the watched loggers."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self.reported = 0

    def emit(self, record: logging.LogRecord) -> None:
        name = record.name
        if any(name == w or name.startswith(w + ".") for w in WATCHED_LOGGERS):
            self.records.append(record)

    def unreported(self) -> list[logging.LogRecord]:
        new = self.records[self.reported :]
        self.reported = len(self.records)
        return new


_collector_key = pytest.StashKey[_ErrorLogCollector]()


def _describe(records: list[logging.LogRecord], phase: str) -> str:
    lines = [
        f"{len(records)} ERROR log record(s) from our packages during {phase} "
        "(mark the test @pytest.mark.allow_error_logs if they are expected):"
    ]
    for rec in records[:20]:
        lines.append(f"  {rec.levelname} {rec.name}: {rec.getMessage()}")
        if rec.exc_info and rec.exc_info[1] is not None:
            exc = rec.exc_info[1]
            lines.append(f"    {type(exc).__name__}: {exc}")
    if len(records) > 20:
        lines.append(f"  ... and {len(records) - 20} more")
    return "\n".join(lines)


@pytest.fixture(autouse=True)
def _fail_on_error_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    """Watch our loggers for the whole test; errors logged in teardown fail here."""
    collector = _ErrorLogCollector()
    request.node.stash[_collector_key] = collector
    root = logging.getLogger()
    root.addHandler(collector)
    try:
        yield
    finally:
        root.removeHandler(collector)
    if request.node.get_closest_marker("allow_error_logs") is None:
        late = collector.unreported()
        if late:
            pytest.fail(_describe(late, "teardown"), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):  # type: ignore[no-untyped-def]
    """Turn ERROR records logged during setup or the test body into a test failure."""
    outcome = yield
    collector = item.stash.get(_collector_key, None)
    if collector is None or item.get_closest_marker("allow_error_logs") is not None:
        return
    records = collector.unreported()
    if records and outcome.excinfo is None:
        outcome.force_exception(
            pytest.fail.Exception(_describe(records, "the test"), pytrace=False)
        )
