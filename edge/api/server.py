"""Serving the API with uvicorn in a background thread."""

from __future__ import annotations

import threading
import time

import uvicorn
from fastapi import FastAPI

from edge.api.app import create_app
from edge.api.staff import end_streams
from edge.app import Gateway


class ApiServer:
    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self.host, self.port = host, port
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=3,  # a backstop: event streams end on stop()
        )
        self._app = app
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise OSError(f"API server could not start on {self.host}:{self.port}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"API server did not start within {timeout} s")
            time.sleep(0.05)
        if self.port == 0:  # the port the OS picked, so that `url` can be used
            for server in getattr(self._server, "servers", []):
                for sock in server.sockets:
                    self.port = int(sock.getsockname()[1])

    def stop(self) -> None:
        end_streams(self._app)  # the dashboard's open event streams would hold the exit
        self._server.should_exit = True
        self._thread.join(timeout=10)


def serve_gateway(gateway: Gateway, host: str, port: int, staff_token: str | None) -> ApiServer:
    """The API of a running gateway: reads from its database, staff actions through it."""
    config = gateway.config
    app = create_app(
        config.database.path,
        store_id=config.store_id,
        health=gateway.health,
        actions=gateway,
        staff_token=staff_token,
        staff=gateway.staff,
        hq_token=config.api.hq_token.get_secret_value() if config.api.hq_token else None,
        signer=gateway.shoppers.signer,
        shoppers=gateway.shoppers,
    )
    server = ApiServer(app, host, port)
    server.start()
    return server
