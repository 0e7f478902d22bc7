"""The media and IG User fields the simulator serves (issue 16): Meta's shapes, values from the
world, a field absent exactly where the world omits it, and Meta's error for an unknown field."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from harvester.simulator import World
from harvester.simulator.validity import MEDIA_COUNT_FIELDS

from .helpers import Client, serve

pytestmark = pytest.mark.anyio

CLASSIC = (
    "caption,like_count,comments_count,media_url,thumbnail_url,shortcode,username,"
    "is_comment_enabled,is_shared_to_feed"
)
COUNTS = ",".join(MEDIA_COUNT_FIELDS)
CHILD = "id,media_type,media_url,thumbnail_url,shortcode,permalink"
LISTED = f"id,media_type,media_product_type,permalink,{CLASSIC},{COUNTS},children{{{CHILD}}}"


async def all_media(c: Client, fields: str, version: str = "v25.0") -> list[dict[str, Any]]:
    acc = c.sim.world.accounts[0]
    status, _, body = await c.get(
        f"/{version}/{acc.id}/media", access_token=acc.token, fields=fields, limit="100"
    )
    assert status == 200, body
    data: list[dict[str, Any]] = body["data"]
    return data


def expected(world: World, item: dict[str, Any]) -> dict[str, Any]:
    """What Meta would send of this media for LISTED, computed from the world."""
    media = world.media(item["id"])
    assert media is not None
    acc = world.accounts[media.account_index]
    video = media.media_type == "VIDEO"
    out: dict[str, Any] = {
        "id": media.id,
        "media_type": media.media_type,
        "media_product_type": media.media_product_type,
        "permalink": media.permalink,
        "caption": world.caption(media),
        "comments_count": world.value_of(media, "comments"),
        "shortcode": media.permalink.rstrip("/").rpartition("/")[2],
        "username": acc.username,
        "is_comment_enabled": world.comments_enabled(media),
        **{f: world.value_of(media, m) for f, m in MEDIA_COUNT_FIELDS.items()},
    }
    if not world.likes_hidden(media):
        out["like_count"] = world.value_of(media, "likes")
    if not world.media_url_withheld(media):
        out["media_url"] = f"https://scontent.cdninstagram.com/v/t51.29350-15/{media.id}_n." + (
            "mp4" if video else "jpg"
        )
    if video:
        out["thumbnail_url"] = (
            f"https://scontent.cdninstagram.com/v/t51.29350-15/{media.id}_thumb.jpg"
        )
    if media.media_product_type == "REELS":
        out["is_shared_to_feed"] = True
    if media.children_ids:
        kids = []
        for child in world.children(media.id):
            kid: dict[str, Any] = {
                "id": child.id,
                "media_type": child.media_type,
                "shortcode": child.shortcode,
                "permalink": child.permalink,
            }
            if not world.media_url_withheld(child):
                ext = "mp4" if child.media_type == "VIDEO" else "jpg"
                kid["media_url"] = (
                    f"https://scontent.cdninstagram.com/v/t51.29350-15/{child.id}_n.{ext}"
                )
            if child.media_type == "VIDEO":
                kid["thumbnail_url"] = (
                    f"https://scontent.cdninstagram.com/v/t51.29350-15/{child.id}_thumb.jpg"
                )
            kids.append(kid)
        out["children"] = {"data": kids}
    return out


async def test_every_listed_field_is_the_worlds_and_absent_where_the_world_omits_it() -> None:
    async with serve(media_per_account=200) as c:
        world = c.sim.world
        items = await all_media(c, LISTED)
        assert len(items) == 100
        for item in items:
            assert item == expected(world, item), item["id"]
        # Some of each case the lake must keep apart from a zero or an empty string.
        assert any("like_count" not in i for i in items)
        assert any("like_count" in i for i in items)
        videos = [i for i in items if i["media_type"] == "VIDEO"]
        assert any("media_url" not in v for v in videos) and any("media_url" in v for v in videos)
        assert all("media_url" in i for i in items if i["media_type"] != "VIDEO")
        assert {i.get("is_comment_enabled") for i in items} == {True, False}
        assert {"is_shared_to_feed" in i for i in items} == {True, False}


async def test_children_refuse_what_meta_does_not_serve_on_children() -> None:
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        for field in ("caption", "like_count", "comments_count", "reposts_count"):
            status, _, body = await c.get(
                f"/v25.0/{acc.id}/media",
                access_token=acc.token,
                fields=f"id,children{{id,{field}}}",
            )
            assert status == 400
            assert body["error"]["code"] == 100
            assert body["error"]["message"] == (
                f"(#100) Tried accessing nonexisting field ({field}) on node type (ShadowIGMedia)"
            )


@pytest.mark.parametrize(
    ("changes", "served"),
    [
        ({}, True),
        ({"as_of": date(2026, 4, 22)}, True),
        ({"as_of": date(2026, 4, 21)}, False),
        ({"login": "instagram"}, False),
    ],
)
async def test_the_newer_counts_exist_with_facebook_login_from_their_date(
    changes: dict[str, Any], served: bool
) -> None:
    async with serve(**changes) as c:
        acc = c.sim.world.accounts[0]
        path = f"/v25.0/{acc.id}/media"
        status, _, body = await c.get(path, access_token=acc.token, fields=f"id,{COUNTS}")
        if served:
            assert status == 200 and set(body["data"][0]) == {"id", *MEDIA_COUNT_FIELDS}
            return
        assert status == 400
        assert body["error"]["message"] == (
            "(#100) Tried accessing nonexisting field (reposts_count) on node type (ShadowIGMedia)"
        )


async def test_unknown_fields_name_the_node_type() -> None:
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        _, _, body = await c.get(f"/v25.0/{acc.id}", access_token=acc.token, fields="id,xyz")
        assert body["error"]["message"] == (
            "(#100) Tried accessing nonexisting field (xyz) on node type (IGUser)"
        )
        media = next(c.sim.world.iter_media(acc.id))
        _, _, body = await c.get(f"/v25.0/{media.id}", access_token=acc.token, fields="xyz")
        assert body["error"]["message"] == (
            "(#100) Tried accessing nonexisting field (xyz) on node type (ShadowIGMedia)"
        )


PROFILE = (
    "username,name,biography,website,followers_count,follows_count,media_count,profile_picture_url"
)


async def test_profiles_are_the_worlds_and_some_lack_a_website_or_a_biography() -> None:
    async with serve(accounts=12) as c:
        world = c.sim.world
        seen = []
        for acc in world.accounts:
            status, _, body = await c.get(
                f"/v25.0/{acc.id}", access_token=acc.token, fields=PROFILE
            )
            if acc.token_expired:
                assert status == 400
                continue
            want = {
                "id": acc.id,
                "username": acc.username,
                "name": acc.name,
                "biography": world.biography(acc),
                "website": world.website(acc),
                "followers_count": acc.followers_count,
                "follows_count": acc.follows_count,
                "media_count": world.media_per_account,
                "profile_picture_url": f"https://scontent.xx.fbcdn.net/v/t51.2885-15/{acc.id}_n.jpg",
            }
            assert body == {k: v for k, v in want.items() if v is not None}
            seen.append(body)
        assert {"website" in b for b in seen} == {True, False}
        assert {"biography" in b for b in seen} == {True, False}
