"""The time formats of the AiFi ground truth, each parsed to an absolute datetime.

Seen in ``dev.json``:

* ``2019-11-07_02-42-40``: absolute.
* ``11_07_2019_03:05:53``: absolute, month_day_year_time.
* ``1:52 + 2019-11-07_02-41-19`` (also ``00:04 + ...``): an offset (minutes:seconds)
  into a recording that started at the absolute time after ``+``.
* ``" + "``: empty; only on events without products (which are skipped).

Anything else raises :class:`ValueError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_ABSOLUTE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})_(\d{2})-(\d{2})-(\d{2})$")
_US_ABSOLUTE = re.compile(r"^(\d{2})_(\d{2})_(\d{4})_(\d{2}):(\d{2}):(\d{2})$")
_OFFSET = re.compile(r"^(?:(\d{1,2}):)?(\d{1,3}):(\d{2})\s*\+\s*(\S+)$")
_RANGE = re.compile(r"^(\d{2}):(\d{2}):(\d{2})\s*-\s*(\d{2}):(\d{2}):(\d{2})$")


@dataclass(frozen=True)
class LabelTime:
    """A parsed label time: ``at`` = ``base`` + ``offset`` (offset zero for absolute times)."""

    text: str
    base: datetime
    offset: timedelta

    @property
    def at(self) -> datetime:
        return self.base + self.offset

    @property
    def is_offset(self) -> bool:
        return bool(_OFFSET.match(self.text.strip()))


def _absolute(text: str) -> datetime | None:
    if m := _ABSOLUTE.match(text):
        y, mo, d, h, mi, s = (int(g) for g in m.groups())
        return datetime(y, mo, d, h, mi, s)
    if m := _US_ABSOLUTE.match(text):
        mo, d, y, h, mi, s = (int(g) for g in m.groups())
        return datetime(y, mo, d, h, mi, s)
    return None


def parse_time(text: str) -> LabelTime:
    """Parse one label time; raise :class:`ValueError` on a format not listed above."""
    stripped = text.strip()
    if (at := _absolute(stripped)) is not None:
        return LabelTime(text, at, timedelta(0))
    if m := _OFFSET.match(stripped):
        hours, minutes, seconds, base_text = m.groups()
        base = _absolute(base_text)
        if base is not None and int(seconds) < 60:
            offset = timedelta(hours=int(hours or 0), minutes=int(minutes), seconds=int(seconds))
            return LabelTime(text, base, offset)
    raise ValueError(f"unknown time format {text!r}")


def parse_range(text: object) -> tuple[timedelta, timedelta] | None:
    """A case's ``"02:42:07 - 02:42:53"`` range as times of day; None when absent/unknown."""
    if not isinstance(text, str) or not (m := _RANGE.match(text.strip())):
        return None
    h1, m1, s1, h2, m2, s2 = (int(g) for g in m.groups())
    return (
        timedelta(hours=h1, minutes=m1, seconds=s1),
        timedelta(hours=h2, minutes=m2, seconds=s2),
    )


def time_of_day(at: datetime) -> timedelta:
    return at - at.replace(hour=0, minute=0, second=0, microsecond=0)
