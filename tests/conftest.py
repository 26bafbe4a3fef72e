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
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
INTEGRATION_DIR = TESTS_DIR / "integration"

#: Loggers whose ERROR records fail a test (each name and its children).
WATCHED_LOGGERS = ("edge", "devices", "firmware_sim", "cloud_sync", "vision")

_BROKER_START_TIMEOUT_S = 10.0


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


def _find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# MQTT 3.1.1 CONNECT (clean session, keepalive 5 s, empty client id) and the CONNACK
# that accepts it: proves an MQTT broker, not just any socket, listens on the port.
_CONNECT = bytes.fromhex("100c00044d515454040200050000")
_CONNACK_OK = bytes.fromhex("20020000")
_DISCONNECT = bytes.fromhex("e000")


def _answers_mqtt(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(_CONNECT)
            reply = b""
            while len(reply) < len(_CONNACK_OK):
                chunk = sock.recv(len(_CONNACK_OK) - len(reply))
                if not chunk:
                    return False
                reply += chunk
            sock.sendall(_DISCONNECT)
            return reply == _CONNACK_OK
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _start_mosquitto(
    binary: str, workdir: Path, host: str
) -> tuple[subprocess.Popen[bytes], int, Path] | str:
    """Start one broker on a free port; return (process, port, log) or mosquitto's output."""
    port = _free_port(host)
    conf = workdir / f"mosquitto-{port}.conf"
    log = workdir / f"mosquitto-{port}.log"
    lines = [
        f"listener {port} {host}",
        "allow_anonymous true",
        "persistence false",
        "max_queued_messages 100000",
        "log_dest stdout",
    ]
    if os.geteuid() == 0:
        # Started as root, mosquitto drops privileges to the `mosquitto` user; keep it
        # root so that it never depends on that user existing or on tmp-dir permissions.
        lines.append("user root")
    conf.write_text("\n".join(lines) + "\n")
    # Output goes to a file, not a pipe: a full pipe would block the broker.
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, "-c", str(conf)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + _BROKER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if _answers_mqtt(host, port) and proc.poll() is None:
            return proc, port, log
        time.sleep(0.05)
    exited = proc.poll() is not None
    _stop(proc)
    how = f"exited with code {proc.returncode}" if exited else "killed after the timeout"
    return (
        f"mosquitto ({binary}) did not accept connections on {host}:{port} within "
        f"{_BROKER_START_TIMEOUT_S:.0f} s ({how}); config {conf}; its output:\n"
        f"{log.read_text(errors='replace')}"
    )


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A real Mosquitto on a free port of 127.0.0.1 for the whole test session."""
    binary = _find_mosquitto()
    if binary is None:
        pytest.fail(
            "mosquitto is not installed (looked on PATH and in /usr/sbin); the integration "
            "tests need a real broker: apt-get install -y mosquitto mosquitto-clients",
            pytrace=False,
        )
    workdir = tmp_path_factory.mktemp("mosquitto")
    host = "127.0.0.1"
    failures: list[str] = []
    for _attempt in range(3):  # the free port may be taken between probe and bind
        started = _start_mosquitto(binary, workdir, host)
        if isinstance(started, str):
            failures.append(started)
            if "in use" in started:  # lost the race for the port: try another one
                continue
            break
        proc, port, _log = started
        try:
            yield Broker(host, port)
        finally:
            _stop(proc)
        return
    pytest.fail("\n\n".join(failures), pytrace=False)


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
