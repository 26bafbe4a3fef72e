"""Start and stop a local Mosquitto process: for the fleet benchmark and the tests.

One place that knows how: find the binary, write a loopback configuration (or use
a generated one), send the broker's output to a file (a full pipe would block it),
and wait until it answers an MQTT CONNECT (any CONNACK proves a broker, not just
any socket; a secured broker answers "not authorised", which still counts).
Started as root, Mosquitto drops to its own user; a loopback configuration keeps
it root, so it never depends on that user existing or on temp-dir permissions.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from edge.mqtt.broker import free_port

#: How long a broker may take to answer.
START_TIMEOUT_S = 10.0

# MQTT 3.1.1 CONNECT (clean session, keepalive 5 s, empty client id), the fixed
# header of a CONNACK, and DISCONNECT.
_CONNECT = bytes.fromhex("100c00044d515454040200050000")
_CONNACK = bytes.fromhex("2002")
_DISCONNECT = bytes.fromhex("e000")


class MosquittoError(RuntimeError):
    """Mosquitto is missing, or did not start (the message holds its output)."""


@dataclass
class Mosquitto:
    """A running broker: its process, where it listens, and its output file."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def answers_mqtt(host: str, port: int) -> bool:
    """Does an MQTT broker listen there (it answers a CONNECT with a CONNACK)?"""
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(_CONNECT)
            reply = b""
            while len(reply) < 4:
                chunk = sock.recv(4 - len(reply))
                if not chunk:
                    return False
                reply += chunk
            sock.sendall(_DISCONNECT)
            return reply[:2] == _CONNACK
    except OSError:
        return False


def loopback_config(port: int, host: str = "127.0.0.1", *extra: str) -> str:
    """An anonymous broker on ``host:port`` without persistence, whose subscribers may
    fall far behind (``max_queued_messages``) before anything is dropped."""
    lines = [
        f"listener {port} {host}",
        "allow_anonymous true",
        "persistence false",
        "max_queued_messages 100000",
        "log_dest stdout",
        *extra,
    ]
    if os.geteuid() == 0:
        lines.append("user root")
    return "\n".join(lines) + "\n"


def start_mosquitto(
    config: Path, port: int, host: str = "127.0.0.1", timeout_s: float = START_TIMEOUT_S
) -> Mosquitto:
    """Run Mosquitto with ``config`` (which listens on ``host:port``) and wait until it
    answers; its output goes to ``config`` with the suffix ``.log``."""
    binary = find_mosquitto()
    if binary is None:
        raise MosquittoError(
            "mosquitto is not installed (looked on PATH and in /usr/sbin): "
            "apt-get install -y mosquitto mosquitto-clients"
        )
    log = config.with_suffix(".log")
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 (our own binary and config)
            [binary, "-c", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    broker = Mosquitto(process, host, port, log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        if answers_mqtt(host, port) and process.poll() is None:
            return broker
        time.sleep(0.05)
    exited = process.poll() is not None
    broker.stop()
    how = f"exited with code {process.returncode}" if exited else "killed after the timeout"
    raise MosquittoError(
        f"mosquitto ({binary}) did not accept connections on {host}:{port} within "
        f"{timeout_s:.0f} s ({how}); config {config}; its output:\n"
        f"{log.read_text(errors='replace')}"
    )


def start_loopback(workdir: Path, host: str = "127.0.0.1", attempts: int = 3) -> Mosquitto:
    """An anonymous broker (:func:`loopback_config`) on a free port of ``host``; tries
    another port when the one probed was taken before the broker could bind it."""
    failures: list[str] = []
    for _ in range(attempts):
        port = free_port(host)
        config = workdir / f"mosquitto-{port}.conf"
        config.write_text(loopback_config(port, host))
        try:
            return start_mosquitto(config, port, host)
        except MosquittoError as exc:
            failures.append(str(exc))
            if "in use" not in str(exc):
                break
    raise MosquittoError("\n\n".join(failures))
