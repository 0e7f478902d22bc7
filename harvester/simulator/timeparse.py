"""`since`/`until` as Meta reads them: a Unix time or a PHP strtotime string.

Real connectors send both (Airbyte's source-instagram sends `2026-11-02T19:01:31+00:00`; others
`2026-11-02`, `yesterday`, `-7 days`). Covered here: Unix times (also `@1700000000`), ISO 8601
dates and date-times with `T` or a space, optional seconds and fraction, `Z`/`+00:00`/`+0000`
offsets (none means UTC [guess: Meta's strtotime zone is undocumented]), `now`, `today`,
`yesterday`, `tomorrow`, `midnight`, and relative offsets (`-7 days`, `+1 week`, `3 days ago`).
Anything else gets code 100, as a string strtotime cannot read does at Meta.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_UNITS = {
    "sec": 1,
    "second": 1,
    "min": 60,
    "minute": 60,
    "hour": 3600,
    "day": 86_400,
    "week": 7 * 86_400,
    "fortnight": 14 * 86_400,
}
_RELATIVE = re.compile(
    r"(?P<sign>[+-]?)\s*(?P<n>\d+)\s*(?P<unit>sec|second|min|minute|hour|day|week|fortnight)s?"
    r"(?P<ago>\s+ago)?"
)
_DAY_WORDS = {"today": 0, "midnight": 0, "yesterday": -1, "tomorrow": 1}


def parse_time(text: str, now: int) -> int | None:
    """Unix seconds for `text` relative to `now`, or None when strtotime would refuse it."""
    raw = text.strip()
    if not raw:
        return None
    if raw.startswith("@"):
        raw = raw[1:]
    if raw.isascii() and raw.isdigit():  # what most connectors send, without the regex
        return int(raw)
    if re.fullmatch(r"-?\d+", raw):
        return int(raw)
    low = raw.lower()
    if low == "now":
        return now
    midnight = now - now % 86_400
    if low in _DAY_WORDS:
        return midnight + _DAY_WORDS[low] * 86_400
    rel = _RELATIVE.fullmatch(low)
    if rel is not None:
        seconds = int(rel["n"]) * _UNITS[rel["unit"]]
        negative = (rel["sign"] == "-") != (rel["ago"] is not None)
        return now - seconds if negative else now + seconds
    return _iso(raw)


def _iso(raw: str) -> int | None:
    text = raw.replace(" ", "T", 1) if re.match(r"\d{4}-\d{2}-\d{2} \d", raw) else raw
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    offset = re.search(r"([+-])(\d{2})(\d{2})$", text)
    if offset is not None and "T" in text:
        text = text[: offset.start()] + f"{offset[1]}{offset[2]}:{offset[3]}"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int((when - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(seconds=1))
