"""Sweeps: what each account's sweep asks, from the lake's cursor.

A sweep of snapshot date D, for each account:
- media posted since the account's last listing (minus a day of slack for Meta's clock) or
  within `lookback_days` before D, whichever reaches further back: new media, and the insights
  of recent media refreshed;
- account insights from the last day committed for it, with a 2-day overlap (Meta's data lags
  48 h), or the last `lookback_days` days when nothing was committed yet.
A second sweep on the same day reuses the first one's starting points, so it covers a superset
of what the first covered. The cursor advances when a job is settled (`lake.settle`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from harvester.lake import layout
from harvester.lake.fs import Lake

__all__ = ["DEFAULT_LOOKBACK_DAYS", "midnight", "sweep_windows"]

DEFAULT_LOOKBACK_DAYS = 7
# Meta's account data lags up to 48 h: the last two committed days are asked again.
ACCOUNT_OVERLAP = timedelta(days=2)
# A media posted just before a listing may show up only after it; one day of slack is cheap.
LISTING_SLACK = timedelta(days=1)


def midnight(day: date) -> datetime:
    """The start of a UTC day."""
    return datetime.combine(day, time(), tzinfo=UTC)


def sweep_windows(
    lake: Lake, accounts: Iterable[str], snapshot_date: date, lookback_days: int
) -> dict[str, dict[str, str]]:
    """Per account, where this sweep's media listing and account insights start (ISO times)."""
    doc = lake.get_object(layout.CURSOR, "accounts")
    cursor = doc["accounts"] if doc else {}
    lookback = midnight(snapshot_date) - timedelta(days=lookback_days)
    out = {}
    for account in accounts:
        entry = cursor.get(account, {})
        day = entry.get("day") or {}
        if day.get("date") == snapshot_date.isoformat():
            out[account] = {"media_since": day["media_since"], "insights_since": day["insights"]}
            continue
        media_since = lookback
        if entry.get("listed_at"):
            media_since = min(lookback, datetime.fromisoformat(entry["listed_at"]) - LISTING_SLACK)
        insights_since = lookback
        if entry.get("insights_until"):
            last = datetime.fromisoformat(entry["insights_until"])
            insights_since = midnight(last.date()) - ACCOUNT_OVERLAP
        out[account] = {
            "media_since": media_since.isoformat(),
            "insights_since": insights_since.isoformat(),
        }
    return out
