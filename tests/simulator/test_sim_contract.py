"""Contract tests: the simulator's replies, key by key and type by type, against real recordings.

The recordings live in ../shared/fixtures (see its SOURCES.md) and are read in place, never copied;
without them these tests skip with the reason given by the `shared_fixtures` fixture.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harvester.simulator import World

from .helpers import Client, serve

pytestmark = pytest.mark.anyio

PF = "python-facebook/testdata"
IG = f"{PF}/instagram/apidata"
AIRBYTE = (
    "airbyte/airbyte-integrations/connectors/source-instagram/unit_tests/resource/http/response"
)


def load(root: Path, rel: str) -> Any:
    path = root / rel
    if not path.exists():
        pytest.skip(f"recording {rel} is absent from {root}")
    return json.loads(path.read_text())


def assert_same_shape(ours: Any, real: Any, where: str = "$") -> None:
    """Same keys at every level and the same JSON type for every value."""
    if isinstance(real, dict):
        assert isinstance(ours, dict), f"{where}: expected an object, got {ours!r}"
        assert set(ours) == set(real), f"{where}: keys {sorted(ours)} != {sorted(real)}"
        for key in real:
            assert_same_shape(ours[key], real[key], f"{where}.{key}")
    elif isinstance(real, list):
        assert isinstance(ours, list), f"{where}: expected a list, got {ours!r}"
        if real and ours:
            for item in ours:
                assert_same_shape(item, real[0], f"{where}[]")
    else:
        assert type(ours) is type(real), f"{where}: {type(ours).__name__} != {type(real).__name__}"


def fields_of(items: list[dict[str, Any]]) -> str:
    keys: dict[str, None] = {}
    for item in items:
        keys.update(dict.fromkeys(item))
    return ",".join(keys)


def pick(world: World, predicate: Any, account: int = 0) -> Any:
    acc = world.accounts[account]
    return next(m for m in world.iter_media(acc.id) if predicate(m))


async def test_media_page(shared_fixtures: Path) -> None:
    real = load(shared_fixtures, f"{IG}/users/medias_p1.json")
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        fields = fields_of(real["data"])
        status, _, ours = await c.get(
            f"/v25.0/{acc.id}/media", access_token=acc.token, fields=fields, limit="2"
        )
        assert status == 200
        for item in ours["data"]:
            if item["media_type"] == "VIDEO":
                item.pop("thumbnail_url", None)
        assert_same_shape(ours, real)


async def test_children(shared_fixtures: Path) -> None:
    real = load(shared_fixtures, f"{IG}/medias/children.json")
    async with serve() as c:
        world = c.sim.world
        album = pick(world, lambda m: m.media_type == "CAROUSEL_ALBUM" and m.trouble is None)
        status, _, ours = await c.get(
            f"/v25.0/{album.id}/children",
            access_token=world.accounts[0].token,
            fields=fields_of(real["data"]) + ",thumbnail_url",
        )
        for item in ours["data"]:
            item.pop("thumbnail_url", None)  # only video children have one; the recording has none
        assert status == 200
        assert_same_shape(ours, real)


async def test_media_insights_values(shared_fixtures: Path) -> None:
    real = load(shared_fixtures, f"{IG}/medias/insights.json")
    async with serve() as c:
        world = c.sim.world
        photo = pick(world, lambda m: m.media_type == "IMAGE" and m.trouble is None)
        metrics = ",".join(e["name"] for e in real["data"])
        status, _, ours = await c.get(
            f"/v17.0/{photo.id}/insights", access_token=world.accounts[0].token, metric=metrics
        )
        assert status == 200
        assert [e["name"] for e in ours["data"]] == [e["name"] for e in real["data"]]
        assert_same_shape(ours, real)


@pytest.mark.parametrize("version", ["v18.0", "v27.0"])
async def test_media_insights_total_value_with_breakdown(
    shared_fixtures: Path, version: str
) -> None:
    """The recorded profile_activity reply carries both shapes; without a breakdown, only values."""
    real = load(shared_fixtures, f"{IG}/medias/insights_new.json")
    async with serve() as c:
        world = c.sim.world
        photo = pick(
            world,
            lambda m: (
                m.media_type == "IMAGE"
                and m.trouble is None
                and world.media_metric_value(m.id, "profile_activity") > 0
            ),
        )
        token = world.accounts[0].token
        status, _, ours = await c.get(
            f"/{version}/{photo.id}/insights",
            access_token=token,
            metric="profile_activity",
            breakdown="action_type",
        )
        assert status == 200
        assert_same_shape(ours, real)
        _, _, plain = await c.get(
            f"/{version}/{photo.id}/insights", access_token=token, metric="profile_activity"
        )
        without = {k: v for k, v in real["data"][0].items() if k != "total_value"}
        assert_same_shape(plain, {"data": [without]})


@pytest.mark.parametrize(
    ("rel", "version", "kind"),
    [
        (f"{AIRBYTE}/media_insights_for_reels.json", "v19.0", "REELS"),
        (f"{AIRBYTE}/media_insights_for_carousel_album.json", "v18.0", "CAROUSEL_ALBUM"),
    ],
)
async def test_airbyte_media_insights(
    shared_fixtures: Path, rel: str, version: str, kind: str
) -> None:
    real = load(shared_fixtures, rel)
    async with serve() as c:
        world = c.sim.world
        media = pick(
            world,
            lambda m: kind in (m.media_type, m.media_product_type) and m.trouble is None,
        )
        metrics = ",".join(e["name"] for e in real["data"])
        status, _, ours = await c.get(
            f"/{version}/{media.id}/insights", access_token=world.accounts[0].token, metric=metrics
        )
        assert status == 200, ours
        assert_same_shape(ours, real)


async def test_story_insights(shared_fixtures: Path) -> None:
    real = load(shared_fixtures, f"{AIRBYTE}/story_insights_for_story_insights_happy_path.json")
    async with serve() as c:
        world = c.sim.world
        acc = world.accounts[1]
        story = next(s for s in world.stories(acc.id) if s.trouble is None)
        metrics = [e["name"] for e in real["data"]]
        status, _, ours = await c.get(
            f"/v18.0/{story.id}/insights", access_token=acc.token, metric=",".join(metrics)
        )
        assert status == 200, ours
        # Without a breakdown every metric, total_interactions included, has the `values` shape.
        assert_same_shape(ours, real)


async def test_account_insights_time_series(shared_fixtures: Path) -> None:
    real = load(shared_fixtures, f"{IG}/users/user_insights.json")
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        metrics = ",".join(e["name"] for e in real["data"])
        status, _, ours = await c.get(
            f"/v17.0/{acc.id}/insights", access_token=acc.token, metric=metrics, period="day"
        )
        assert status == 200
        assert_same_shape(ours["data"], real["data"])
        # Without since/until Meta looks back 24 hours: one 07:00 boundary (the 2017 recording,
        # from an older default, has two).
        assert [len(e["values"]) for e in ours["data"]] == [1, 1, 1]


async def test_airbyte_account_insights(shared_fixtures: Path) -> None:
    real = load(shared_fixtures, f"{AIRBYTE}/user_insights.json")
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        metrics = ",".join(e["name"] for e in real["data"])
        status, _, ours = await c.get(
            f"/v25.0/{acc.id}/insights", access_token=acc.token, metric=metrics, period="day"
        )
        assert status == 200
        assert_same_shape(ours["data"], real["data"])


async def test_account_insights_total_value(shared_fixtures: Path) -> None:
    real = load(shared_fixtures, f"{IG}/users/user_insights_new.json")
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        status, _, ours = await c.get(
            f"/v18.0/{acc.id}/insights",
            access_token=acc.token,
            metric="reach",
            metric_type="total_value",
            period="day",
            breakdown="media_product_type,follow_type",
            timeframe="last_14_days",
        )
        assert status == 200
        assert_same_shape(ours, real)


# Airbyte asks follower_demographics without a timeframe: Meta requires none for it.
@pytest.mark.parametrize("timeframe", [{"timeframe": "this_month"}, {}])
async def test_account_demographics(shared_fixtures: Path, timeframe: dict[str, str]) -> None:
    real = load(shared_fixtures, f"{AIRBYTE}/user_lifetime_insights_for_age_gender.json")
    async with serve() as c:
        world = c.sim.world
        acc = next(a for a in world.accounts if a.followers_count >= 100)
        status, _, ours = await c.get(
            f"/v25.0/{acc.id}/insights",
            access_token=acc.token,
            metric="follower_demographics",
            metric_type="total_value",
            period="lifetime",
            breakdown="age,gender",
            **timeframe,
        )
        assert status == 200, ours
        assert_same_shape(ours, real)


async def test_stories(shared_fixtures: Path) -> None:
    real = load(shared_fixtures, f"{IG}/users/stories.json")
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        status, _, ours = await c.get(
            f"/v25.0/{acc.id}/stories", access_token=acc.token, fields=fields_of(real["data"])
        )
        assert status == 200
        for item in ours["data"]:
            item.pop("thumbnail_url", None)
        assert_same_shape(ours, real)


async def test_user_fields(shared_fixtures: Path) -> None:
    real = load(shared_fixtures, f"{IG}/users/user_fields.json")
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        status, _, ours = await c.get(
            f"/v25.0/{acc.id}", access_token=acc.token, fields=",".join(real)
        )
        assert status == 200
        assert_same_shape(ours, real)


async def test_me_accounts(shared_fixtures: Path) -> None:
    real = load(shared_fixtures, f"{PF}/base/user_accounts_token.json")
    async with serve() as c:
        status, _, ours = await c.get("/v25.0/me/accounts", access_token=c.sim.world.user_token)
        assert status == 200
        assert_same_shape(ours, real)


async def test_discovery_shape(shared_fixtures: Path) -> None:
    real = load(shared_fixtures, f"{AIRBYTE}/api.json")
    async with serve() as c:
        _, _, ours = await c.get(
            "/v25.0/me/accounts",
            access_token=c.sim.world.user_token,
            fields="instagram_business_account",
        )
        assert_same_shape(ours["data"][0], real["data"][0])


async def error_reply(c: Client, trouble: str) -> Any:
    world = c.sim.world
    acc = world.accounts[0]
    if trouble == "few_viewers":
        media = next(s for s in world.stories(acc.id) if s.trouble == trouble)
    else:
        media = pick(world, lambda m: m.trouble == trouble)
    status, _, body = await c.get(
        f"/v25.0/{media.id}/insights", access_token=acc.token, metric="reach"
    )
    assert status == 400
    return body


@pytest.mark.parametrize(
    ("rel", "trouble"),
    [
        (f"{AIRBYTE}/media_insights_for_error_posted_before_business.json", "pre_conversion"),
        (f"{AIRBYTE}/media_insights_for_error_with_wrong_permissions.json", "deleted"),
        (f"{AIRBYTE}/media_insights_for_error_with_wrong_permissions_code_10.json", "few_viewers"),
    ],
)
async def test_error_bodies(shared_fixtures: Path, rel: str, trouble: str) -> None:
    real = load(shared_fixtures, rel)
    async with serve() as c:
        ours = await error_reply(c, trouble)
        assert_same_shape(ours, real)
        assert ours["error"]["code"] == real["error"]["code"]
        assert ours["error"].get("error_subcode") == real["error"].get("error_subcode")


async def test_plain_code_100_error(shared_fixtures: Path) -> None:
    real = load(shared_fixtures, f"{PF}/base/error_data.json")
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        reel = pick(c.sim.world, lambda m: m.media_product_type == "REELS" and m.trouble is None)
        status, _, ours = await c.get(
            f"/v25.0/{reel.id}/insights", access_token=acc.token, metric="profile_visits"
        )
        assert status == 400
        assert_same_shape(ours, real)


# ---- the connector's requests Meta answers (issue 14, item 5) ---------------------------------


async def test_connector_iso_since_until(shared_fixtures: Path) -> None:
    """Airbyte sends since/until as ISO strings: the same reply as with Unix times."""
    real = load(shared_fixtures, f"{AIRBYTE}/user_insights.json")
    async with serve() as c:
        metrics = ",".join(e["name"] for e in real["data"])
        replies = []
        for since, until in (
            ("2026-05-31T12:00:00+00:00", "2026-06-01T12:00:00+00:00"),
            ("1780228800", "1780315200"),
        ):
            status, ours = await c.account_insights(
                version="v27.0", metric=metrics, period="day", since=since, until=until
            )
            assert status == 200, ours
            assert_same_shape(ours["data"], real["data"])
            assert [len(e["values"]) for e in ours["data"]] == [1, 1]  # as recorded
            replies.append(ours["data"])
        assert replies[0] == replies[1]


async def test_media_nodes_with_details(shared_fixtures: Path) -> None:
    # `GET /{media-id}?fields=caption,like_count,...` of a photo and an album (with children):
    # the simulator's node of the same type, asked the same fields, has the same keys and types.
    real = load(shared_fixtures, f"{IG}/medias/medias_fields.json")
    async with serve() as c:
        world = c.sim.world
        token = world.accounts[0].token
        for recorded in real.values():
            media = pick(
                world,
                lambda m, t=recorded["media_type"]: (
                    m.media_type == t
                    and m.trouble is None
                    and not world.likes_hidden(m)
                    and all(not world.media_url_withheld(k) for k in world.children(m.id))
                ),
            )
            fields = ",".join(
                f"children{{{fields_of(recorded['children']['data'])}}}" if k == "children" else k
                for k in recorded
            )
            status, _, ours = await c.get(f"/v25.0/{media.id}", access_token=token, fields=fields)
            assert status == 200, ours
            for child in ours.get("children", {}).get("data", []):
                child.pop("thumbnail_url", None)
            assert_same_shape(ours, recorded)
