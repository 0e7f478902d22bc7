"""Account insights: periods, the 30-day window, total values, demographics and removals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from harvester.simulator import values
from harvester.simulator.call import Call
from harvester.simulator.ids import mix
from harvester.simulator.world import World

from .helpers import NOW, serve

pytestmark = pytest.mark.anyio

DAY = 86_400


def ts(when: datetime) -> str:
    return str(int(when.timestamp()))


async def test_day_series_matches_world_values() -> None:
    async with serve() as c:
        world = c.sim.world
        acc = world.accounts[0]
        since, until = NOW - timedelta(days=5), NOW
        status, _, body = await c.get(
            f"/v25.0/{acc.id}/insights",
            access_token=acc.token,
            metric="reach,follower_count",
            period="day",
            since=ts(since),
            until=ts(until),
        )
        assert status == 200
        reach = body["data"][0]
        days = [datetime.strptime(v["end_time"], "%Y-%m-%dT%H:%M:%S%z") for v in reach["values"]]
        assert len(days) == 5
        assert all(d.hour == 7 for d in days)
        for day, value in zip(days, reach["values"], strict=True):
            assert value["value"] == world.account_metric_value(acc.id, "reach", "day", day.date())
        assert body["paging"]["next"].count("since=") == 1


async def test_window_over_30_days_is_refused() -> None:
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        status, _, body = await c.get(
            f"/v25.0/{acc.id}/insights",
            access_token=acc.token,
            metric="reach",
            period="day",
            since=ts(NOW - timedelta(days=31)),
            until=ts(NOW),
        )
        assert status == 400
        assert body["error"]["message"] == (
            "(#100) There cannot be more than 30 days (2592000 s) between since and until"
        )


async def test_data_older_than_retention_is_empty() -> None:
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        old = NOW - timedelta(days=1000)
        status, _, body = await c.get(
            f"/v25.0/{acc.id}/insights",
            access_token=acc.token,
            metric="reach",
            period="day",
            since=ts(old),
            until=ts(old + timedelta(days=3)),
        )
        assert status == 200
        assert body["data"][0]["values"] == []


@pytest.mark.parametrize(
    ("version", "metric", "removed_in"),
    [("v22.0", "impressions", 22), ("v21.0", "profile_views", 21), ("v18.0", "audience_city", 18)],
)
async def test_removed_metric_message(version: str, metric: str, removed_in: int) -> None:
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        status, _, body = await c.get(
            f"/{version}/{acc.id}/insights", access_token=acc.token, metric=metric, period="day"
        )
        assert status == 400
        assert body["error"]["message"].startswith(
            f"(#100) Starting from version {removed_in} and above, the {metric} metric is no "
            "longer supported for the queried user."
        )


async def test_as_of_removes_account_metrics_in_old_versions() -> None:
    async with serve(as_of=date(2025, 4, 21)) as c:
        acc = c.sim.world.accounts[0]
        status, _, _ = await c.get(
            f"/v17.0/{acc.id}/insights", access_token=acc.token, metric="impressions", period="day"
        )
        assert status == 400


async def test_total_value_needs_metric_type() -> None:
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        path = f"/v25.0/{acc.id}/insights"
        status, _, _ = await c.get(
            path, access_token=acc.token, metric="accounts_engaged", period="day"
        )
        assert status == 400
        status, _, body = await c.get(
            path,
            access_token=acc.token,
            metric="accounts_engaged,views",
            period="day",
            metric_type="total_value",
        )
        assert status == 200
        assert [set(e["total_value"]) for e in body["data"]] == [{"value"}, {"value"}]


async def test_total_value_breakdowns_sum_to_the_total() -> None:
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        status, _, body = await c.get(
            f"/v25.0/{acc.id}/insights",
            access_token=acc.token,
            metric="views",
            period="day",
            metric_type="total_value",
            breakdown="follower_type,media_product_type",
        )
        assert status == 200
        total = body["data"][0]["total_value"]
        [breakdown] = total["breakdowns"]
        assert breakdown["dimension_keys"] == ["follower_type", "media_product_type"]
        assert sum(r["value"] for r in breakdown["results"]) == total["value"]


@pytest.mark.parametrize("breakdown", ["age", "gender", "country", "city", "age,gender"])
async def test_demographics(breakdown: str) -> None:
    async with serve() as c:
        acc = next(a for a in c.sim.world.accounts if a.followers_count >= 100)
        status, _, body = await c.get(
            f"/v25.0/{acc.id}/insights",
            access_token=acc.token,
            metric="follower_demographics,engaged_audience_demographics",
            period="lifetime",
            metric_type="total_value",
            breakdown=breakdown,
            timeframe="this_week",
        )
        assert status == 200
        for entry in body["data"]:
            [part] = entry["total_value"]["breakdowns"]
            assert part["dimension_keys"] == breakdown.split(",")
            assert 0 < len(part["results"]) <= 45


@pytest.mark.parametrize(("version", "status"), [("v19.0", 200), ("v20.0", 400)])
async def test_old_timeframes_only_below_v20(version: str, status: int) -> None:
    async with serve() as c:
        acc = next(a for a in c.sim.world.accounts if a.followers_count >= 100)
        got, _, _ = await c.get(
            f"/{version}/{acc.id}/insights",
            access_token=acc.token,
            metric="reached_audience_demographics",
            period="lifetime",
            metric_type="total_value",
            breakdown="country",
            timeframe="last_30_days",
        )
        assert got == status


async def test_seed_lifetime_maps_below_v18() -> None:
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        status, _, body = await c.get(
            f"/v17.0/{acc.id}/insights",
            access_token=acc.token,
            metric="audience_gender_age,online_followers",
            period="lifetime",
        )
        assert status == 200
        audience, online = body["data"]
        assert all("." in key for key in audience["values"][0]["value"])
        assert set(online["values"][0]["value"]) == {str(h) for h in range(24)}


async def test_wrong_period_is_refused() -> None:
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        status, _, _ = await c.get(
            f"/v25.0/{acc.id}/insights",
            access_token=acc.token,
            metric="follower_count",
            period="week",
        )
        assert status == 400


def test_end_time_boundary_is_seven_utc() -> None:
    from harvester.simulator.account_insights import boundary

    assert boundary(date(2024, 1, 15)) == datetime(2024, 1, 15, 7, tzinfo=UTC)


async def test_a_request_judged_once_is_judged_alike_for_every_account_and_per_version() -> None:
    """The simulator remembers which requests it validated (every account asks the same ones):
    a refused request stays refused each time it is asked, a valid one is answered for every
    account with that account's values, and a version that refuses what an older one took
    still refuses it."""
    async with serve() as c:
        first, second = c.sim.world.accounts[:2]
        asked = {"metric": "reach", "period": "day"}
        old = {"metric": "impressions", "period": "day"}  # removed in v22
        for acc in (first, second, first):
            status, _, body = await c.get(
                f"/v22.0/{acc.id}/insights", access_token=acc.token, breakdown="age", **asked
            )
            assert (status, body["error"]["code"]) == (400, 100)
        values = []
        for acc in (first, second):
            status, _, body = await c.get(
                f"/v22.0/{acc.id}/insights", access_token=acc.token, **asked
            )
            assert status == 200
            [entry] = body["data"]
            values.append([(v["end_time"][:10], v["value"]) for v in entry["values"]])
        days = [date.fromisoformat(end[:10]) for end, _ in values[0]]
        assert len(days) == 1
        assert values == [
            [
                (f"{day}", c.sim.world.account_metric_value(acc.id, "reach", "day", day))
                for day in days
            ]
            for acc in (first, second)
        ]
        statuses = [
            (await c.get(f"/{v}/{first.id}/insights", access_token=first.token, **old))[0]
            for v in ("v21.0", "v22.0")
        ]
        assert statuses == [200, 400]


def test_shortcuts_equal_what_they_stand_for() -> None:
    """The account insights reply's shortcuts give what the longer ways give: a window's total
    (one day or many, reach or not), demographic parts, and the paging links' query prefix."""
    world = World(7, 2, 4, NOW)
    acc = world.accounts[1]
    start = date(2026, 5, 1)
    for metric in ("reach", "views", "follower_count"):
        for n in (0, 1, 2, 30):
            days = [start + timedelta(days=i) for i in range(n)]
            daily = values.account_values(7, acc.index, acc.followers_count, metric, "day", days)
            want = values.deduplicated(daily) if metric == "reach" else sum(daily)
            got = values.account_total(7, acc.index, acc.followers_count, metric, "day", days)
            assert got == world.account_total_value(acc, metric, days) == want
    keys = ["a", "b", "c", "d"]
    parts = values.segment_shares(7, acc, 99, len(keys), 1000)
    want_counts = {k: v for k, v in zip(keys, parts, strict=True) if v > 0}
    assert values.segment_counts(7, acc, 99, keys, 1000) == want_counts
    assert values.split(1000, tuple(keys), 7, acc.index, 99, mix(len(keys))) == want_counts
    for query in ([], [("since", "1")], [("metric", "a b"), ("until", "2"), ("x", "é&?")]):
        call = Call("GET", "/v25.0/1/insights", query, dict(query), None, "http://h")
        url = call.url_with(since=None, until=None)
        sep = "" if url.endswith("?") else "&"
        assert call.prefix_without(frozenset({"since", "until"})) == url + sep
