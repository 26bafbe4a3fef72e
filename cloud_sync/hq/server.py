"""Running HQ: in the foreground (``storeedge hq``) or in a background thread (the
demo, tests), on a socket bound before the server starts (port 0 = a free port)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from cloud_sync.hq.app import create_app, wall_clock_ms
from cloud_sync.hq.db import HqDatabase
from cloud_sync.hq.fleet import STALE_AFTER_S


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class HqServer:
    """HQ in a background thread.  ``url`` is known once it is constructed."""

    def __init__(
        self,
        db_target: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        admin_token: str | None = None,
        stale_after_s: float = STALE_AFTER_S,
        ssl_certfile: Path | None = None,
        ssl_keyfile: Path | None = None,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self.db = HqDatabase.open(db_target)
        self.app: FastAPI = create_app(
            self.db,
            admin_token=admin_token,
            stale_after_s=stale_after_s,
            clock_ms=clock_ms or wall_clock_ms,
        )
        self._sock = bind(host, port)
        self.host, self.port = host, int(self._sock.getsockname()[1])
        self.scheme = "https" if ssl_certfile else "http"
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="off",
            ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
            ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="hq", daemon=True
        )

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> HqServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise OSError(f"HQ could not start on {self.url}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"HQ did not start within {timeout} s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
        self.db.close()


def serve_forever(
    db_target: str | Path,
    *,
    host: str,
    port: int,
    admin_token: str | None,
    stale_after_s: float = STALE_AFTER_S,
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
    log_level: str = "warning",
) -> None:
    """Serve HQ until SIGINT/SIGTERM."""
    db = HqDatabase.open(db_target)
    app = create_app(db, admin_token=admin_token, stale_after_s=stale_after_s)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="off",
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
    )
    try:
        uvicorn.Server(config).run()
    finally:
        db.close()
