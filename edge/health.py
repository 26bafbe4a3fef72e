"""Device liveness: online while messages arrive, offline on the last will or silence.

Times are the gateway's own clock (device clocks may be skewed).  Every change of
state is written as a device state event, which later syncs to HQ.
"""

from __future__ import annotations

from collections.abc import Callable

#: The state change callback: (device_id, "online" | "offline", reason, now_ms).
OnChange = Callable[[str, str, str, int], None]


class Liveness:
    """``offline_after_ms`` is the silence limit of a device that did not say how often
    it reports; one that did (its ``heartbeat_s`` setting) may be silent for
    ``missed_heartbeats`` of its intervals (a shelf label reporting once a minute is
    not offline after 30 s)."""

    def __init__(
        self, offline_after_ms: int, on_change: OnChange, missed_heartbeats: int = 3
    ) -> None:
        self._after = offline_after_ms
        self._missed = missed_heartbeats
        self._on_change = on_change
        self._last: dict[str, int] = {}
        self._state: dict[str, str] = {}
        self._every: dict[str, int] = {}

    def expect_every(self, device_id: str, interval_ms: int) -> None:
        """The device reports at least this often (its heartbeat interval)."""
        self._every[device_id] = interval_ms

    def set_offline_after(self, offline_after_ms: int, missed_heartbeats: int) -> None:
        """New silence limits (a configuration from HQ), from now on."""
        self._after = offline_after_ms
        self._missed = missed_heartbeats

    def limit_ms(self, device_id: str) -> int:
        every = self._every.get(device_id)
        return self._after if every is None else max(self._after, self._missed * every)

    def seen(self, device_id: str, now_ms: int, *, announce: bool = True) -> None:
        self._last[device_id] = now_ms
        if self._state.get(device_id) != "online":
            self._state[device_id] = "online"
            if announce:
                self._on_change(device_id, "online", "message received", now_ms)

    def gone(self, device_id: str, now_ms: int, reason: str) -> None:
        """The device said goodbye (or its last will did)."""
        if self._state.get(device_id) != "offline":
            self._state[device_id] = "offline"
            self._on_change(device_id, "offline", reason, now_ms)

    def check(self, now_ms: int) -> list[str]:
        """Mark silent devices offline; returns their ids."""
        silent = [
            d
            for d, state in self._state.items()
            if state == "online" and now_ms - self._last[d] > self.limit_ms(d)
        ]
        for device_id in silent:
            self._state[device_id] = "offline"
            self._on_change(
                device_id,
                "offline",
                f"nothing heard for {(now_ms - self._last[device_id]) / 1000:.0f} s",
                now_ms,
            )
        return silent

    def state(self, device_id: str) -> str | None:
        return self._state.get(device_id)

    def forget(self, device_id: str) -> None:
        """The device is no longer part of the store (a planogram without its shelf):
        its silence from now on is no news."""
        for table in (self._last, self._state, self._every):
            table.pop(device_id, None)
