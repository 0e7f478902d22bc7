"""Usage headers: how much of Meta's rate budgets a reply says we have used, and when blocks end.

Meta reports usage on every reply (`X-App-Usage` for the app, `X-Business-Use-Case-Usage` per
Instagram account). These headers are advisory and sometimes malformed; a bad header must never fail
a request whose body is fine, so every parser here ignores what it cannot read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson

__all__ = ["Usage", "header", "parse_usage"]

APP_USAGE = "x-app-usage"
BUSINESS_USAGE = "x-business-use-case-usage"
# Both headers carry percentages of a budget; the budget is spent when any one of them reaches 100.
_PERCENT_KEYS = ("call_count", "total_time", "total_cputime")
_REGAIN_KEY = "estimated_time_to_regain_access"  # minutes, per Meta


class Usage(NamedTuple):
    """Percent used of the app budget and of each account's budget; seconds until blocks end.

    `account_pct` and `regain_seconds` are keyed by the Instagram user id named in the header.
    """

    app_pct: float | None
    account_pct: dict[str, float]
    regain_seconds: dict[str, float]


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup in aiohttp's CIMultiDictProxy or a plain dict; never raises."""
    try:
        value = headers.get(name)
        if value is None:
            lowered = name.lower()
            value = next((v for k, v in headers.items() if str(k).lower() == lowered), None)
    except Exception:  # an exotic mapping must not fail the reply it came with
        return None
    return value if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def _json_object(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _max_percent(entry: dict[str, Any]) -> float | None:
    numbers = [n for key in _PERCENT_KEYS if (n := _number(entry.get(key))) is not None]
    return max(numbers) if numbers else None


def parse_usage(headers: Mapping[str, str], *, minute_seconds: float = 60.0) -> Usage:
    """Read both usage headers; unreadable parts are left out rather than raised.

    `minute_seconds` converts Meta's regain minutes into seconds; the simulator shrinks it so tests
    exercise real pauses without waiting minutes.
    """
    app = _json_object(header(headers, APP_USAGE))
    app_pct = _max_percent(app) if app is not None else None

    account_pct: dict[str, float] = {}
    regain_seconds: dict[str, float] = {}
    for account_id, entries in (_json_object(header(headers, BUSINESS_USAGE)) or {}).items():
        if not isinstance(entries, list):
            continue
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            pct = _max_percent(entry)
            if pct is not None:
                account_pct[account_id] = max(pct, account_pct.get(account_id, 0.0))
            minutes = _number(entry.get(_REGAIN_KEY))
            if minutes is not None:
                seconds = minutes * minute_seconds
                if math.isfinite(seconds):
                    regain_seconds[account_id] = max(seconds, regain_seconds.get(account_id, 0.0))
    return Usage(app_pct=app_pct, account_pct=account_pct, regain_seconds=regain_seconds)
