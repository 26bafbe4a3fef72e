"""Helpers of the cloud_sync tests: HQ in a thread or as a real process, paging."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from cloud_sync.hq.auth import hash_key, new_api_key
from cloud_sync.hq.db import HqDatabase
from cloud_sync.hq.server import HqServer

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "admin-secret-token"


class Clock:
    """HQ's clock in ms, moved by the test."""

    def __init__(self, now_ms: int = 1_700_000_000_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def add_store(db: HqDatabase, store_id: str, name: str | None = None) -> str:
    key = new_api_key()
    db.add_store(store_id, name, hash_key(key), 0)
    return key


@dataclass
class Hq:
    server: HqServer
    clock: Clock

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def db(self) -> HqDatabase:
        return self.server.db

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {ADMIN}"})

    def as_store(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HqProcess:
    """``storeedge hq`` as a real process (so that it can be SIGKILLed)."""

    def __init__(self, db: str | Path, log: Path) -> None:
        self.db = str(db)
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def start(self, timeout: float = 30.0) -> HqProcess:
        self.port = free_port()
        env = {**os.environ, "STOREEDGE_HQ_ADMIN_TOKEN": ADMIN}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "edge.cli", "hq", "--db", self.db, "--port", str(self.port)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"HQ exited: {self.log.read_text(errors='replace')}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        raise TimeoutError(f"HQ did not start: {self.log.read_text(errors='replace')}")

    def stop(self) -> None:
        """A clean stop (SIGTERM)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def hq_transactions(url: str, store_id: str) -> tuple[list[dict[str, object]], int]:
    """Every transaction HQ holds for a store, read page by page."""
    items: list[dict[str, object]] = []
    total = -1
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}) as client:
        while True:
            page = client.get(
                "/api/v1/transactions",
                params={"store_id": store_id, "limit": 50, "offset": len(items)},
            ).json()
            total = page["total"]
            items.extend(page["items"])
            if not page["items"]:
                return items, total
