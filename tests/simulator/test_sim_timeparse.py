"""`since`/`until` as Unix times or strtotime strings, as real connectors send them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from harvester.simulator.account_insights import boundary
from harvester.simulator.timeparse import parse_time

from .helpers import NOW, serve

pytestmark = pytest.mark.anyio

T0 = int(datetime(2026, 11, 2, 19, 1, 31, tzinfo=UTC).timestamp())
MIDNIGHT = int(datetime(2026, 11, 2, tzinfo=UTC).timestamp())
DAY = 86_400


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (str(T0), T0),
        (f"@{T0}", T0),
        ("2026-11-02T19:01:31+00:00", T0),
        ("2026-11-02T19:01:31+0000", T0),
        ("2026-11-02T19:01:31Z", T0),
        ("2026-11-02T19:01:31.250Z", T0),
        ("2026-11-02T21:01:31+02:00", T0),
        ("2026-11-02 19:01:31", T0),
        ("2026-11-02T19:01:31", T0),
        ("2026-11-02", MIDNIGHT),
        ("now", T0),
        ("today", MIDNIGHT),
        ("midnight", MIDNIGHT),
        ("yesterday", MIDNIGHT - DAY),
        ("tomorrow", MIDNIGHT + DAY),
        ("-7 days", T0 - 7 * DAY),
        ("+1 week", T0 + 7 * DAY),
        ("3 days ago", T0 - 3 * DAY),
        ("2 hours ago", T0 - 7200),
        ("1 day", T0 + DAY),
        ("", None),
        ("soon", None),
        ("2026-13-02", None),
        ("11/02/2026x", None),
    ],
)
def test_parse_time(text: str, expected: int | None) -> None:
    assert parse_time(text, T0) == expected


@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("2026-05-28T00:00:00+00:00", "2026-05-31T00:00:00+00:00"),
        ("2026-05-28", "2026-05-31"),
        (
            str(int(datetime(2026, 5, 28, tzinfo=UTC).timestamp())),
            str(int(datetime(2026, 5, 31, tzinfo=UTC).timestamp())),
        ),
    ],
)
async def test_account_insights_take_strtotime_windows(since: str, until: str) -> None:
    """The connector's request (an ISO `since`) gets the same days as its Unix form."""
    async with serve() as c:
        status, body = await c.account_insights(
            metric="reach", period="day", since=since, until=until
        )
        assert status == 200, body
        ends = [v["end_time"] for v in body["data"][0]["values"]]
        assert ends == [
            "2026-05-28T07:00:00+0000",
            "2026-05-29T07:00:00+0000",
            "2026-05-30T07:00:00+0000",
        ]


async def test_media_listing_takes_strtotime_windows() -> None:
    async with serve() as c:
        world = c.sim.world
        acc = world.accounts[0]
        since = datetime(2025, 6, 1, tzinfo=UTC)
        status, _, body = await c.get(
            f"/v25.0/{acc.id}/media",
            access_token=acc.token,
            since="2025-06-01",
            until="now",
            limit="100",
        )
        assert status == 200, body
        want = [m.id for m in world.iter_media(acc.id) if m.timestamp >= since]
        assert [m["id"] for m in body["data"]] == want


async def test_unreadable_time_is_code_100() -> None:
    async with serve() as c:
        status, body = await c.account_insights(metric="reach", period="day", since="soon")
        assert status == 400
        assert body["error"]["code"] == 100


async def test_default_window_is_the_last_24_hours() -> None:
    async with serve() as c:
        status, body = await c.account_insights(metric="reach", period="day")
        assert status == 200
        [value] = body["data"][0]["values"]
        # NOW is 12:00 UTC: the one 07:00 boundary within the last 24 hours is today's.
        assert value["end_time"] == boundary(NOW.date()).strftime("%Y-%m-%dT%H:%M:%S+0000")
