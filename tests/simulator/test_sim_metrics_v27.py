"""The 2025-2026 metrics, as Meta serves them through v27.0: kinds, dates, logins, conditions.

Every rule is checked over real loopback HTTP against the world's own values, plus the pure
tables they come from.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from harvester.simulator import SimMedia, World
from harvester.simulator.account_insights import DIMENSION_VALUES
from harvester.simulator.validity import kind_of, valid_media_metrics

from .helpers import BASE, NOW, Client, serve
from .test_sim_validity import KINDS, NEW_MEDIA, OLD

pytestmark = pytest.mark.anyio


def find(world: World, predicate: Callable[[SimMedia], bool]) -> SimMedia:
    for acc in world.accounts:
        if acc.token_expired:
            continue
        for media in [*world.iter_media(acc.id), *world.stories(acc.id)]:
            if media.trouble is None and predicate(media):
                return media
    raise AssertionError("no such media in the test world")


def of_kind(world: World, kind: str, shared: bool | None = None) -> SimMedia:
    return find(
        world,
        lambda m: (
            kind_of(m.media_type, m.media_product_type) == kind
            and (shared is None or world.shared_to_facebook(m) is shared)
        ),
    )


async def insights(c: Client, media: SimMedia, version: str = "v27.0", **params: str) -> Any:
    token = c.sim.world.accounts[media.account_index].token
    return await c.get(f"/{version}/{media.id}/insights", access_token=token, **params)


WIDE = {"accounts": 8, "media_per_account": 80}


@pytest.mark.parametrize("kind", list(KINDS))
async def test_every_new_metric_is_served_for_its_kinds(kind: str) -> None:
    names = [m for m, kinds, *_ in NEW_MEDIA if kind in kinds.split()]
    async with serve(**WIDE) as c:
        world = c.sim.world
        media = of_kind(world, kind, shared=True)
        status, _, body = await insights(c, media, metric=",".join(names))
        assert status == 200, body
        got = {e["name"]: e["values"] for e in body["data"]}
        assert got == {n: [{"value": world.media_metric_value(media.id, n)}] for n in names}
        assert all("total_value" not in e for e in body["data"])


async def test_reels_skip_rate_is_a_fractional_percentage() -> None:
    async with serve(**WIDE) as c:
        world = c.sim.world
        reels = [
            m
            for a in world.accounts
            for m in world.iter_media(a.id)
            if m.media_product_type == "REELS" and m.trouble is None and not a.token_expired
        ]
        rates = [world.media_metric_value(m.id, "reels_skip_rate") for m in reels]
        assert all(isinstance(r, float) and 0 < r < 100 for r in rates)
        assert all(Decimal(str(r)).as_tuple().exponent >= -2 for r in rates)  # two digits at most
        assert any(r < 1 for r in rates) and any(r > 10 for r in rates)
        assert any(Decimal(str(r)).as_tuple().exponent == -2 for r in rates)
        # Deterministic per media from the seed.
        again = World(BASE.seed, 8, 80, NOW)
        assert rates == [again.media_metric_value(m.id, "reels_skip_rate") for m in reels]
        low = next(m for m, r in zip(reels, rates, strict=True) if r < 1)
        status, _, body = await insights(c, low, metric="reels_skip_rate")
        assert status == 200
        assert body["data"][0]["values"] == [
            {"value": world.media_metric_value(low.id, "reels_skip_rate")}
        ]


def test_shared_to_facebook_is_a_deterministic_share() -> None:
    world = World(BASE.seed, 8, 80, NOW)
    media = [m for a in world.accounts for m in world.iter_media(a.id)]
    shared = [world.shared_to_facebook(m) for m in media]
    assert 0.25 < sum(shared) / len(shared) < 0.35
    again = World(BASE.seed, 8, 80, NOW)
    assert shared == [again.shared_to_facebook(m) for m in media]
    for album in (m for m in media if m.children_ids):
        assert not any(world.shared_to_facebook(c) for c in world.children(album.id))


@pytest.mark.parametrize(
    ("kind", "metric"),
    [("REEL", "crossposted_views"), ("REEL", "facebook_views"), ("PHOTO", "facebook_views")],
)
async def test_conditional_metric_fails_the_whole_request_unless_shared(
    kind: str, metric: str
) -> None:
    async with serve(**WIDE) as c:
        world = c.sim.world
        lonely = of_kind(world, kind, shared=False)
        status, _, body = await insights(c, lonely, metric=f"reach,{metric}")
        assert status == 400
        assert "data" not in body
        error = body["error"]
        assert (error["type"], error["code"], error.get("error_subcode")) == (
            "OAuthException",
            100,
            None,
        )
        assert error["message"] == (
            f"(#100) The Media Insights API does not support the {metric} metric for this media."
        )
        shared = of_kind(world, kind, shared=True)
        status, _, body = await insights(c, shared, metric=f"reach,{metric}")
        assert status == 200
        assert [e["name"] for e in body["data"]] == ["reach", metric]


async def test_instagram_login_lacks_the_facebook_only_metrics() -> None:
    async with serve(login="instagram") as c:
        world = c.sim.world
        reel = of_kind(world, "REEL")
        status, _, body = await insights(c, reel, metric="reach,total_likes")
        assert status == 400
        message = body["error"]["message"]
        assert message.startswith("(#100) metric[1] must be one of the following values: ")
        listed = message.split(": ", 1)[1].split(", ")
        assert "total_likes" not in listed and "reposts" in listed
        status, _, _ = await insights(c, reel, metric="reach,reposts")
        assert status == 200


@pytest.mark.parametrize("kind", list(KINDS))
async def test_unknown_metric_lists_what_the_kind_accepts(kind: str) -> None:
    extra = {"REELS": ("reels_new_thing",), "STORY": ("story_new_thing",)}
    async with serve(extra_metrics=extra, **WIDE) as c:
        world = c.sim.world
        media = of_kind(world, kind)
        status, _, body = await insights(c, media, metric="reach,no_such_metric")
        assert status == 400
        media_type, product = KINDS[kind]
        want = valid_media_metrics(
            "v27.0", media_type, product, as_of=None, created=OLD, shared_to_facebook=True
        ) | set(extra.get({"REEL": "REELS"}.get(kind, kind), ()))
        assert body["error"]["message"] == (
            f"(#100) metric[1] must be one of the following values: {', '.join(sorted(want))}"
        )


async def test_extra_metrics_are_served_where_offered() -> None:
    extra = {"REELS": ("reels_new_thing",), "ACCOUNT": ("account_new_thing",)}
    async with serve(extra_metrics=extra) as c:
        world = c.sim.world
        reel = of_kind(world, "REEL")
        status, _, body = await insights(c, reel, metric="reels_new_thing")
        assert status == 200
        assert body["data"][0]["values"] == [
            {"value": world.media_metric_value(reel.id, "reels_new_thing")}
        ]
        photo = of_kind(world, "PHOTO")
        status, _, body = await insights(c, photo, metric="reels_new_thing")
        assert status == 400
        assert "reels_new_thing" not in body["error"]["message"]
        acc = world.accounts[0]
        status, _, body = await c.get(
            f"/v27.0/{acc.id}/insights", access_token=acc.token, metric="nope", period="day"
        )
        listed = body["error"]["message"].split(": ", 1)[1].split(", ")
        assert "account_new_thing" in listed and "reposts" in listed and listed == sorted(listed)
        status, _, body = await c.get(
            f"/v27.0/{acc.id}/insights",
            access_token=acc.token,
            metric="account_new_thing",
            period="day",
        )
        assert status == 200, body


@pytest.mark.parametrize("planted", [False, True])
async def test_legacy_feed_videos_refuse_interactions(planted: bool) -> None:
    async with serve(legacy_video_refusals=planted, accounts=3, media_per_account=400) as c:
        world = c.sim.world
        videos = [
            m
            for a in world.accounts[:2]
            for m in world.iter_media(a.id)
            if (m.media_type, m.media_product_type) == ("VIDEO", "FEED") and m.trouble is None
        ]
        legacy = [m for m in videos if world.legacy_video(m)]
        assert bool(legacy) is planted
        assert len(legacy) < len(videos) / 4
        for media in legacy[:2]:
            status, _, body = await insights(c, media, metric="reach,total_interactions")
            assert status == 400
            assert body["error"]["message"] == (
                "(#100) Incompatible metric (total_interactions) with the media"
            )
            status, _, _ = await insights(c, media, metric="reach,saved,shares")
            assert status == 200
        modern = next(m for m in videos if not world.legacy_video(m))
        status, _, _ = await insights(c, modern, metric="total_interactions,likes,comments")
        assert status == 200


# ---- account insights -------------------------------------------------------------------


def test_documented_breakdown_values() -> None:
    documented = {
        "contact_button_type": "BOOK_NOW CALL DIRECTION EMAIL INSTANT_EXPERIENCE TEXT UNDEFINED",
        "follow_type": "FOLLOWER NON_FOLLOWER UNKNOWN",
    }
    for key, names in documented.items():
        assert DIMENSION_VALUES[key] == tuple(names.split())


def window(days: int, ago: int = 0) -> dict[str, str]:
    until = int(NOW.timestamp()) - ago * 86_400
    return {"since": str(until - days * 86_400), "until": str(until)}


def days_of(world: World, days: int) -> list[date]:
    """The end_time days of `window(days)`: boundaries in (since, until]."""
    last = world.day_floor(NOW) + timedelta(days=1)  # NOW is after 07:00: today's boundary
    return [last - timedelta(days=1 + i) for i in range(days)][::-1]


async def test_account_reposts_is_a_total_value_without_breakdown() -> None:
    async with serve() as c:
        world = c.sim.world
        acc = world.accounts[0]
        status, body = await c.account_insights(
            version="v27.0", metric="reposts", period="day", metric_type="total_value", **window(7)
        )
        assert status == 200, body
        want = world.account_total_value(acc, "reposts", days_of(world, 7))
        assert body["data"][0]["total_value"] == {"value": want}
        status, _ = await c.account_insights(
            version="v27.0", metric="reposts", period="day", **window(7)
        )
        assert status == 400
        status, _ = await c.account_insights(
            version="v27.0",
            metric="reposts",
            period="day",
            metric_type="total_value",
            breakdown="media_product_type",
            **window(7),
        )
        assert status == 400


async def test_reach_total_value_is_deduplicated_with_its_breakdowns() -> None:
    async with serve() as c:
        world = c.sim.world
        acc = world.accounts[0]
        days = days_of(world, 7)
        status, body = await c.account_insights(
            version="v27.0",
            metric="reach",
            period="day",
            metric_type="total_value",
            breakdown="media_product_type,follow_type",
            **window(7),
        )
        assert status == 200, body
        total = body["data"][0]["total_value"]
        daily = [world.account_metric_value(acc.id, "reach", "day", d) for d in days]
        assert total["value"] == world.account_total_value(acc, "reach", days)
        assert max(daily) <= total["value"] < sum(daily)
        [part] = total["breakdowns"]
        assert part["dimension_keys"] == ["media_product_type", "follow_type"]
        assert sum(r["value"] for r in part["results"]) == total["value"]
        assert {r["dimension_values"][1] for r in part["results"]} <= set(
            DIMENSION_VALUES["follow_type"]
        )
        status, body = await c.account_insights(
            version="v27.0", metric="reach", period="day", **window(7)
        )
        assert status == 200
        assert [v["value"] for v in body["data"][0]["values"]] == daily


DEMOGRAPHICS = [
    # (metric, version, as_of, timeframe or None, accepted)
    ("follower_demographics", 27, None, None, True),
    ("follower_demographics", 27, None, "last_30_days", True),
    ("follower_demographics", 27, None, "prev_month", True),
    ("engaged_audience_demographics", 27, None, None, False),
    ("engaged_audience_demographics", 27, None, "this_month", True),
    ("engaged_audience_demographics", 27, None, "last_30_days", False),
    ("reached_audience_demographics", 25, None, "last_14_days", False),
    ("reached_audience_demographics", 19, None, "last_90_days", True),
    ("reached_audience_demographics", 19, date(2024, 8, 19), "last_90_days", False),
    ("engaged_audience_demographics", 19, date(2024, 8, 18), "prev_month", True),
]


@pytest.mark.parametrize(("metric", "version", "as_of", "timeframe", "accepted"), DEMOGRAPHICS)
async def test_demographics_timeframes(
    metric: str, version: int, as_of: date | None, timeframe: str | None, accepted: bool
) -> None:
    params = {"metric": metric, "period": "lifetime", "metric_type": "total_value"}
    params["breakdown"] = "country"
    if timeframe is not None:
        params["timeframe"] = timeframe
    async with serve(as_of=as_of) as c:
        acc = next(a for a in c.sim.world.accounts if a.followers_count >= 100)
        status, _, body = await c.get(
            f"/v{version}.0/{acc.id}/insights", access_token=acc.token, **params
        )
        assert (status == 200) is accepted, body
        if accepted:
            [entry] = body["data"]
            assert entry["total_value"]["breakdowns"][0]["dimension_keys"] == ["country"]
        else:
            assert body["error"]["message"].startswith(
                "(#100) timeframe must be one of the following values: "
            )


@pytest.mark.parametrize(("metric", "short"), [("follower_count", True), ("reach", False)])
async def test_follower_count_only_for_the_last_30_days(metric: str, short: bool) -> None:
    async with serve() as c:
        status, body = await c.account_insights(
            version="v27.0", metric=metric, period="day", **window(5, ago=32)
        )
        assert status == 200
        assert (body["data"][0]["values"] == []) is short
        status, body = await c.account_insights(
            version="v27.0", metric=metric, period="day", **window(5, ago=20)
        )
        assert len(body["data"][0]["values"]) == 5


async def test_online_followers_only_for_the_last_30_days() -> None:
    async with serve() as c:
        _, old = await c.account_insights(
            version="v27.0", metric="online_followers", period="lifetime", **window(5, ago=32)
        )
        _, recent = await c.account_insights(
            version="v27.0", metric="online_followers", period="lifetime", **window(5, ago=20)
        )
        assert old["data"][0]["values"] == []
        assert len(recent["data"][0]["values"]) == 5
