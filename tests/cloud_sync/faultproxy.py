"""A small TCP proxy that injects network faults between the sender and HQ.

(This kernel has no ``tc netem``.)  Modes and holds:

* ``refuse = True``: accept and close at once (HQ unreachable);
* ``upstream``: can change at any time (HQ restarted on another port);
* ``hold_request(path, after)``: a request for ``path`` is forwarded only up to
  ``after`` bytes; the rest is held (HQ dies in the middle of receiving a batch);
* ``hold_response(path)``: a request for ``path`` is forwarded whole, HQ's answer
  is held (HQ committed, the gateway never hears it);
* ``drop_all()``: close every connection now.

``request_held`` / ``response_held`` are set when a hold catches something, so a
test waits on an event, never on a clock.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading


class _Pair:
    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.path = b""  # the path of the request now in flight on this connection
        self.sent_of_request = 0
        self.closed = False

    def close(self) -> None:
        self.closed = True
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


class FaultProxy:
    def __init__(self, upstream: tuple[str, int] | None = None) -> None:
        self.upstream = upstream
        self.refuse = False
        self._hold_request: tuple[bytes, int] | None = None
        self._hold_response: bytes | None = None
        self.request_held = threading.Event()
        self.response_held = threading.Event()
        self.connections = 0
        self._pairs: list[_Pair] = []
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = int(self._listener.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ controls

    def hold_request(self, path: bytes, after: int) -> None:
        self.request_held.clear()
        self._hold_request = (path, after)

    def hold_response(self, path: bytes) -> None:
        self.response_held.clear()
        self._hold_response = path

    def release(self) -> None:
        """No more holds (what was held is dropped with its connection)."""
        self._hold_request = None
        self._hold_response = None

    def drop_all(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            pair.close()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self.drop_all()
        self._thread.join(timeout=5)

    # ------------------------------------------------------------------ plumbing

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._listener], [], [], 0.1)
            except (OSError, ValueError):
                return
            if not ready:
                continue
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            upstream_addr = self.upstream
            if self.refuse or upstream_addr is None:
                client.close()
                continue
            try:
                upstream = socket.create_connection(upstream_addr, timeout=2)
            except OSError:
                client.close()  # HQ is down: the client sees the connection closed
                continue
            pair = _Pair(client, upstream)
            with self._lock:
                self._pairs.append(pair)
            threading.Thread(target=self._pump, args=(pair,), daemon=True).start()

    def _pump(self, pair: _Pair) -> None:
        held_request = held_response = False
        try:
            while not pair.closed and not self._stop.is_set():
                ready, _, _ = select.select([pair.client, pair.upstream], [], [], 0.1)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is pair.client:
                        if held_request:
                            continue
                        if data[:8].split(b" ")[0] in {b"GET", b"POST", b"PUT", b"DELETE"}:
                            pair.path = data.split(b" ", 2)[1]
                            pair.sent_of_request = 0
                        rule = self._hold_request
                        if rule is not None and pair.path.startswith(rule[0]):
                            room = rule[1] - pair.sent_of_request
                            if len(data) > room:
                                pair.upstream.sendall(data[: max(room, 0)])
                                pair.sent_of_request += max(room, 0)
                                held_request = True
                                self.request_held.set()
                                continue
                        pair.upstream.sendall(data)
                        pair.sent_of_request += len(data)
                    else:
                        rule_path = self._hold_response
                        if held_response or (
                            rule_path is not None and pair.path.startswith(rule_path)
                        ):
                            held_response = True
                            self.response_held.set()
                            continue
                        pair.client.sendall(data)
        except OSError:
            return
        finally:
            pair.close()
            with self._lock:
                if pair in self._pairs:
                    self._pairs.remove(pair)
