"""Business discovery in the simulator: Meta's reply shape (held against the recorded replies),
nested media paging by cursor, the 110/2207013 envelope, public fields only, and the charge to
the app's platform limit (X-App-Usage counts it, no BUC account on it)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from harvester.simulator import LimitSettings
from harvester.simulator.__main__ import build_parser, settings_from_args
from tests.simulator.helpers import BASE, Client, serve

pytestmark = pytest.mark.anyio

WORLD = replace(BASE, competitors=3)
MEDIA = "id,caption,like_count,comments_count,timestamp,permalink,media_type,media_product_type"


async def discover(
    client: Client, fields: str, account: int = 0
) -> tuple[int, dict[str, str], Any]:
    acc = client.sim.world.accounts[account]
    return await client.get(f"/v25.0/{acc.id}", access_token=acc.token, fields=fields)


def shape(value: Any) -> Any:
    """The keys and value types of a reply, recursively (lists by their first item)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


async def test_first_and_next_pages_are_shaped_as_the_recorded_ones(shared_fixtures: Path) -> None:
    base = shared_fixtures / "python-facebook" / "testdata" / "base"
    recorded = [orjson.loads((base / f"discovery_medias_p{p}.json").read_bytes()) for p in (1, 2)]
    async with serve(WORLD) as client:
        world = client.sim.world
        who = world.competitors.profile(0)
        fields = f"business_discovery.username(competitor_0){{media.limit(5){{{MEDIA}}}}}"
        status, _, first = await discover(client, fields)
        assert status == 200
        after = first["business_discovery"]["media"]["paging"]["cursors"]["after"]
        pages = [first]
        while after is not None:
            fields = (
                f"business_discovery.username(competitor_0){{media.after({after}).limit(50){{id}}}}"
            )
            status, _, page = await discover(client, fields)
            assert status == 200
            pages.append(page)
            after = (
                page["business_discovery"]["media"]
                .get("paging", {})
                .get("cursors", {})
                .get("after")
            )
    # The recorded first page: its keys, nested `media` with data and paging.cursors.after only.
    assert first["id"] == world.accounts[0].id
    assert (
        shape(first)["business_discovery"]["media"]["paging"]
        == shape(recorded[0])["business_discovery"]["media"]["paging"]
    )
    assert (
        set(first["business_discovery"])
        == set(recorded[0]["business_discovery"])
        == {"id", "media"}
    )
    assert set(first["business_discovery"]["media"]["data"][0]) <= set(MEDIA.split(","))
    for ours, theirs in zip(
        pages[0]["business_discovery"]["media"]["data"],
        recorded[0]["business_discovery"]["media"]["data"],
        strict=False,
    ):
        for key in set(ours) & set(theirs):
            assert type(ours[key]) is type(theirs[key]), key
    # The last page has `before` only, as the recorded last page; no page has a `next` URL.
    last_paging = pages[-1]["business_discovery"]["media"]["paging"]
    assert shape(last_paging) == shape(recorded[1]["business_discovery"]["media"]["paging"])
    assert all("next" not in p["business_discovery"]["media"].get("paging", {}) for p in pages)
    ids = [m["id"] for p in pages for m in p["business_discovery"]["media"]["data"]]
    assert ids == [world.competitors.media(0, m).id for m in range(who.media_count)]


async def test_profile_fields_are_the_worlds_and_omitted_ones_absent() -> None:
    async with serve(WORLD) as client:
        who = client.sim.world.competitors.profile(1)
        fields = (
            "business_discovery.username(COMPETITOR_1){username,website,biography,followers_count}"
        )
        status, _, body = await discover(client, fields)
    assert status == 200
    assert body["business_discovery"] == {
        "username": "competitor_1",
        "followers_count": who.followers_count,
        "id": who.id,
    }  # competitor 1 has no website nor biography: absent, as Meta omits them


async def test_an_unknown_username_is_meta_s_110_2207013() -> None:
    async with serve(WORLD) as client:
        status, _, body = await discover(client, "business_discovery.username(competitor_3){id}")
    assert status == 400
    error = body["error"]
    assert {k: v for k, v in error.items() if k != "fbtrace_id"} == {
        "message": "Invalid user id",
        "type": "OAuthException",
        "code": 110,
        "error_subcode": 2207013,
        "is_transient": False,
        "error_user_title": "Cannot find User",
        "error_user_msg": "The user with username: competitor_3 cannot be found.",
    }


@pytest.mark.parametrize("field", ["insights", "stories{id}", "access_token"])
async def test_only_public_fields(field: str) -> None:
    async with serve(WORLD) as client:
        status, _, body = await discover(
            client, f"business_discovery.username(competitor_0){{{field}}}"
        )
    assert status == 400
    assert body["error"]["code"] == 100
    assert "nonexisting field" in body["error"]["message"]


async def test_media_insights_are_not_offered() -> None:
    async with serve(WORLD) as client:
        fields = "business_discovery.username(competitor_0){media{id,insights.metric(reach)}}"
        status, _, body = await discover(client, fields)
        media_id = client.sim.world.competitors.media(0, 0).id
        acc = client.sim.world.accounts[0]
        node, _, _ = await client.get(
            f"/v25.0/{media_id}/insights", access_token=acc.token, metric="reach"
        )
    assert (status, body["error"]["code"]) == (400, 100)
    assert node == 400  # a competitor's media is no node anyone's token may read


async def test_charged_to_the_app_not_the_account() -> None:
    limits = LimitSettings(app_budget=10, account_budget=2)
    async with serve(WORLD, limits=limits) as client:
        for n in range(1, 5):
            status, headers, _ = await discover(
                client, "business_discovery.username(competitor_0){id}"
            )
            assert status == 200
            assert orjson.loads(headers["X-App-Usage"])["call_count"] == n * 10
            assert headers["X-Business-Use-Case-Usage"] == "{}"
        log = list(client.sim.request_log)
        # The account's own budget (2) is untouched: its node is still readable twice.
        acc = client.sim.world.accounts[0]
        for _ in range(2):
            status, _, _ = await client.get(f"/v25.0/{acc.id}", access_token=acc.token, fields="id")
            assert status == 200
    assert [(e["edge"], e["account_id"]) for e in log] == [("business_discovery", None)] * 4


def test_the_cli_option_and_world_info() -> None:
    args = build_parser().parse_args(["--competitors", "12"])
    assert settings_from_args(args).competitors == 12
