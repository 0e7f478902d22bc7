"""Nodes, edges and media insights over real loopback HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from harvester.simulator import World

from .helpers import Client, serve

pytestmark = pytest.mark.anyio


def first(world: World, account: int, predicate: Any) -> Any:
    acc = world.accounts[account]
    return next(m for m in world.iter_media(acc.id) if predicate(m))


async def test_me_accounts_lists_pages_and_one_without_instagram() -> None:
    async with serve() as c:
        world = c.sim.world
        fields = "instagram_business_account{id,username}"
        status, _, body = await c.get(
            "/v25.0/me/accounts", access_token=world.user_token, fields=fields
        )
        assert status == 200
        linked = [p["instagram_business_account"]["id"] for p in body["data"][:-1]]
        assert linked == [a.id for a in world.accounts]
        assert body["data"][-1] == {"id": world.orphan_page_id}
        assert "next" not in body["paging"]


async def test_me_accounts_default_fields_carry_page_tokens() -> None:
    async with serve() as c:
        world = c.sim.world
        _, _, body = await c.get("/v25.0/me/accounts", access_token=world.user_token, limit="2")
        assert [p["access_token"] for p in body["data"]] == [a.token for a in world.accounts[:2]]
        status, _, page2 = await c.get(body["paging"]["next"])
        assert status == 200
        assert [p["id"] for p in page2["data"]] == [
            world.accounts[2].page_id,
            world.orphan_page_id,
        ]


async def test_user_fields() -> None:
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        fields = "id,username,followers_count,media_count,name,biography"
        status, _, body = await c.get(f"/v25.0/{acc.id}", access_token=acc.token, fields=fields)
        assert status == 200
        assert body["id"] == acc.id
        assert body["followers_count"] == acc.followers_count
        assert body["media_count"] == 60


async def test_unknown_field_is_rejected() -> None:
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        status, _, body = await c.get(f"/v25.0/{acc.id}", access_token=acc.token, fields="id,bogus")
        assert status == 400
        assert body["error"]["code"] == 100
        assert "nonexisting field (bogus)" in body["error"]["message"]


async def walk(c: Client, acc_token: str, url: str, **params: str) -> list[dict[str, Any]]:
    status, _, body = await c.get(url, access_token=acc_token, **params)
    items = []
    while True:
        assert status == 200
        items += body["data"]
        nxt = body.get("paging", {}).get("next")
        if nxt is None:
            return items
        assert acc_token in nxt  # Meta repeats every parameter, the token included
        status, _, body = await c.get(nxt)


async def test_media_paging_walks_everything_newest_first() -> None:
    async with serve() as c:
        world = c.sim.world
        acc = world.accounts[0]
        fields = "id,media_type,media_product_type,timestamp,permalink"
        items = await walk(c, acc.token, f"/v25.0/{acc.id}/media", fields=fields)
        expected = list(world.iter_media(acc.id))
        assert [i["id"] for i in items] == [m.id for m in expected]
        assert items[0]["timestamp"] == expected[0].timestamp.strftime("%Y-%m-%dT%H:%M:%S+0000")
        assert items[0]["media_product_type"] == expected[0].media_product_type


@pytest.mark.parametrize(("limit", "pages"), [("7", 9), ("100", 1), ("1000", 1), ("", 3)])
async def test_media_limit(limit: str, pages: int) -> None:
    async with serve() as c:
        acc = c.sim.world.accounts[1]
        count = 0
        _, _, body = await c.get(f"/v25.0/{acc.id}/media", access_token=acc.token, limit=limit)
        while True:
            count += 1
            if "next" not in body["paging"]:
                break
            _status, _, body = await c.get(body["paging"]["next"])
        assert count == pages


async def test_media_since_until() -> None:
    async with serve() as c:
        world = c.sim.world
        acc = world.accounts[0]
        media = list(world.iter_media(acc.id))
        since = str(int(media[30].timestamp.timestamp()))
        until = str(int(media[10].timestamp.timestamp()))
        items = await walk(
            c, acc.token, f"/v25.0/{acc.id}/media", since=since, until=until, limit="4"
        )
        assert [i["id"] for i in items] == [m.id for m in media[10:31]]


async def test_children_expansion_and_edge() -> None:
    async with serve() as c:
        world = c.sim.world
        acc = world.accounts[0]
        album = first(world, 0, lambda m: m.media_type == "CAROUSEL_ALBUM" and not m.trouble)
        kids = world.children(album.id)
        status, _, body = await c.get(
            f"/v25.0/{album.id}", access_token=acc.token, fields="id,children{id,media_type}"
        )
        assert status == 200
        assert body["children"]["data"] == [{"id": k.id, "media_type": k.media_type} for k in kids]
        status, _, edge = await c.get(f"/v25.0/{album.id}/children", access_token=acc.token)
        assert edge == {"data": [{"id": k.id} for k in kids]}


async def test_stories_edge_lists_live_stories() -> None:
    async with serve() as c:
        world = c.sim.world
        acc = world.accounts[0]
        fields = "id,media_type,media_product_type"
        status, _, body = await c.get(
            f"/v25.0/{acc.id}/stories", access_token=acc.token, fields=fields
        )
        assert status == 200
        assert [s["id"] for s in body["data"]] == [s.id for s in world.stories(acc.id)]
        assert {s["media_product_type"] for s in body["data"]} == {"STORY"}


async def test_media_insights_values_shape() -> None:
    async with serve() as c:
        world = c.sim.world
        acc = world.accounts[0]
        photo = first(world, 0, lambda m: m.media_type == "IMAGE" and not m.trouble)
        status, _, body = await c.get(
            f"/v25.0/{photo.id}/insights", access_token=acc.token, metric="reach,saved"
        )
        assert status == 200
        assert [e["name"] for e in body["data"]] == ["reach", "saved"]
        reach = body["data"][0]
        assert reach["values"] == [{"value": world.media_metric_value(photo.id, "reach")}]
        assert reach["period"] == "lifetime"
        assert reach["id"] == f"{photo.id}/insights/reach/lifetime"


async def test_media_insights_total_value_shape_and_breakdown() -> None:
    async with serve() as c:
        world = c.sim.world
        acc = world.accounts[0]
        photo = first(world, 0, lambda m: m.media_type == "IMAGE" and not m.trouble)
        _, _, plain = await c.get(
            f"/v25.0/{photo.id}/insights", access_token=acc.token, metric="views,profile_activity"
        )
        # Without `breakdown` every metric replies in the `values` shape [doc].
        for entry in plain["data"]:
            assert entry["values"] == [{"value": world.media_metric_value(photo.id, entry["name"])}]
            assert "total_value" not in entry
        _, _, broken = await c.get(
            f"/v25.0/{photo.id}/insights",
            access_token=acc.token,
            metric="profile_activity",
            breakdown="action_type",
        )
        [entry] = broken["data"]
        value = world.media_metric_value(photo.id, "profile_activity")
        assert entry["values"] == [{"value": value}]
        total = entry["total_value"]
        assert total["value"] == value
        [breakdown] = total["breakdowns"]
        assert breakdown["dimension_keys"] == ["action_type"]
        parts = {r["dimension_values"][0]: r["value"] for r in breakdown["results"]}
        assert parts == world.media_metric_breakdown(photo.id, "profile_activity")


async def test_breakdown_with_unsupported_metric_fails() -> None:
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        photo = first(c.sim.world, 0, lambda m: m.media_type == "IMAGE" and not m.trouble)
        status, _, body = await c.get(
            f"/v25.0/{photo.id}/insights",
            access_token=acc.token,
            metric="profile_activity,reach",
            breakdown="action_type",
        )
        # A breakdown on a metric that has none: Meta's code 1 wording [doc].
        assert status == 500
        assert (body["error"]["code"], body["error"]["message"]) == (
            1,
            "An unknown error has occurred.",
        )


async def test_one_unsupported_metric_fails_the_whole_request() -> None:
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        reel = first(c.sim.world, 0, lambda m: m.media_product_type == "REELS" and not m.trouble)
        status, _, body = await c.get(
            f"/v25.0/{reel.id}/insights", access_token=acc.token, metric="reach,profile_visits"
        )
        assert status == 400
        assert body["error"]["message"] == (
            "(#100) The Media Insights API does not support the profile_visits metric for this "
            "media product type."
        )
        assert "data" not in body


async def test_metric_unknown_to_the_version() -> None:
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        photo = first(c.sim.world, 0, lambda m: m.media_type == "IMAGE" and not m.trouble)
        status, _, body = await c.get(
            f"/v22.0/{photo.id}/insights", access_token=acc.token, metric="reach,engagement"
        )
        assert status == 400
        assert body["error"]["message"].startswith(
            "(#100) metric[1] must be one of the following values: "
        )
        assert "engagement" not in body["error"]["message"]
        status, _, _ = await c.get(
            f"/v17.0/{photo.id}/insights", access_token=acc.token, metric="reach,engagement"
        )
        assert status == 200


async def test_as_of_removes_metrics_from_old_versions() -> None:
    from datetime import date

    async with serve(as_of=date(2025, 5, 1)) as c:
        acc = c.sim.world.accounts[0]
        photo = first(c.sim.world, 0, lambda m: m.media_type == "IMAGE" and not m.trouble)
        status, _, body = await c.get(
            f"/v17.0/{photo.id}/insights", access_token=acc.token, metric="impressions"
        )
        assert status == 400
        assert body["error"]["code"] == 100


async def test_carousel_child_has_no_insights() -> None:
    async with serve() as c:
        world = c.sim.world
        acc = world.accounts[0]
        album = first(world, 0, lambda m: m.media_type == "CAROUSEL_ALBUM" and not m.trouble)
        child = world.children(album.id)[0]
        status, _, body = await c.get(
            f"/v25.0/{child.id}/insights", access_token=acc.token, metric="reach"
        )
        assert status == 400
        assert body["error"]["code"] == 100
        assert "error_subcode" not in body["error"]
        assert "carousel album" in body["error"]["message"]


@pytest.mark.parametrize(
    ("trouble", "status", "code", "subcode"),
    [("deleted", 400, 100, 33), ("pre_conversion", 400, 100, 2108006)],
)
async def test_planted_media_troubles(trouble: str, status: int, code: int, subcode: int) -> None:
    async with serve() as c:
        world = c.sim.world
        acc = world.accounts[0]
        media = first(world, 0, lambda m: m.trouble == trouble)
        got, _, body = await c.get(
            f"/v25.0/{media.id}/insights", access_token=acc.token, metric="reach"
        )
        assert (got, body["error"]["code"], body["error"]["error_subcode"]) == (
            status,
            code,
            subcode,
        )
        assert body["error"]["is_transient"] is False


async def test_no_data_media_answers_empty() -> None:
    async with serve() as c:
        world = c.sim.world
        media = first(world, 0, lambda m: m.trouble == "no_data")
        kind_metric = "reach"
        status, _, body = await c.get(
            f"/v25.0/{media.id}/insights", access_token=world.accounts[0].token, metric=kind_metric
        )
        assert (status, body) == (200, {"data": []})


async def test_story_with_few_viewers() -> None:
    async with serve() as c:
        world = c.sim.world
        acc = world.accounts[0]
        story = next(s for s in world.stories(acc.id) if s.trouble == "few_viewers")
        status, _, body = await c.get(
            f"/v25.0/{story.id}/insights", access_token=acc.token, metric="reach"
        )
        assert status == 400
        assert body["error"] == {
            "message": "(#10) Not enough viewers for the media to show insights",
            "type": "OAuthException",
            "code": 10,
            "fbtrace_id": body["error"]["fbtrace_id"],
        }


async def test_story_navigation_breakdown() -> None:
    async with serve() as c:
        world = c.sim.world
        acc = world.accounts[1]
        story = next(s for s in world.stories(acc.id) if s.trouble is None)
        status, _, body = await c.get(
            f"/v25.0/{story.id}/insights",
            access_token=acc.token,
            metric="navigation",
            breakdown="story_navigation_action_type",
        )
        assert status == 200
        keys = body["data"][0]["total_value"]["breakdowns"][0]["dimension_keys"]
        assert keys == ["story_navigation_action_type"]


async def test_field_expansion_of_insights_on_media() -> None:
    async with serve() as c:
        world = c.sim.world
        acc = world.accounts[1]
        status, _, body = await c.get(
            f"/v25.0/{acc.id}/media",
            access_token=acc.token,
            fields="id,insights.metric(reach)",
            limit="5",
        )
        assert status == 200
        for item in body["data"]:
            media = world.media(item["id"])
            assert media is not None
            if media.trouble is None:
                [entry] = item["insights"]["data"]
                assert entry["values"][0]["value"] == world.media_metric_value(media.id, "reach")


async def test_field_expansion_fails_the_page_on_a_rejected_metric() -> None:
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        status, _, body = await c.get(
            f"/v25.0/{acc.id}/media", access_token=acc.token, fields="id,insights.metric(plays)"
        )
        assert status == 400
        assert body["error"]["code"] == 100


@pytest.mark.parametrize("version", ["v9.0", "v28.0", "v99.0", "v25.5"])
async def test_unserved_versions(version: str) -> None:
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        status, _, body = await c.get(f"/{version}/{acc.id}", access_token=acc.token)
        assert status == 400
        assert body["error"]["type"] == "OAuthException"


async def test_unknown_edge_and_object() -> None:
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        status, _, body = await c.get(f"/v25.0/{acc.id}/bogus", access_token=acc.token)
        assert (status, body["error"]["code"]) == (400, 2500)
        status, _, body = await c.get("/v25.0/12345", access_token=acc.token)
        assert (status, body["error"]["code"], body["error"]["error_subcode"]) == (400, 100, 33)


async def test_user_media_expansion() -> None:
    async with serve() as c:
        world = c.sim.world
        acc = world.accounts[0]
        status, _, body = await c.get(
            f"/v25.0/{acc.id}",
            access_token=acc.token,
            fields="username,media.limit(3){id,media_type}",
        )
        assert status == 200
        expected = [{"id": m.id, "media_type": m.media_type} for m in world.iter_media(acc.id)]
        assert body["media"]["data"] == expected[:3]


async def test_page_node_discovery() -> None:
    async with serve() as c:
        world = c.sim.world
        acc = world.accounts[1]
        status, _, body = await c.get(
            f"/v25.0/{acc.page_id}",
            access_token=world.user_token,
            fields="instagram_business_account",
        )
        assert (status, body) == (
            200,
            {"instagram_business_account": {"id": acc.id}, "id": acc.page_id},
        )


async def test_stats_route_and_jsonl_log(tmp_path: Any) -> None:
    log = tmp_path / "requests.jsonl"
    async with serve(request_log_file=log) as c:
        acc = c.sim.world.accounts[0]
        await c.get(f"/v25.0/{acc.id}", access_token=acc.token)
        status, _, stats = await c.get("/__sim/stats")
        assert status == 200
        assert stats == c.sim.stats()
        assert stats["by_edge"] == {"object": 1}
        assert stats["per_account"] == {acc.id: 1}
        assert stats["by_status"] == {"200": 1}
    [line] = log.read_text().splitlines()
    assert acc.token not in line
    assert '"edge":"object"' in line
