"""Business discovery replies and requests: the recorded replies (python-facebook's testdata)
parse, fields omitted are None, the next page's cursor is the nested one, and 110/2207013 is a
skippable error of that competitor."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from harvester.catalog import object_fields
from harvester.graph.discovery_replies import discovery_fields, parse_discovery
from harvester.graph.errors import (
    AccountFatal,
    MalformedReply,
    ProfileUnavailable,
    Skippable,
    classify,
)
from harvester.graph.health import HealthWatch
from harvester.models import MediaDetails, Source


def recorded(shared_fixtures: Path, page: int) -> object:
    path = (
        shared_fixtures / "python-facebook" / "testdata" / "base" / f"discovery_medias_p{page}.json"
    )
    return orjson.loads(path.read_bytes())


def test_the_recorded_first_page(shared_fixtures: Path) -> None:
    page = parse_discovery(recorded(shared_fixtures, 1))
    reply = recorded(shared_fixtures, 1)
    assert isinstance(reply, dict)
    found = reply["business_discovery"]
    assert page.profile is not None
    assert (page.profile.account_id, page.profile.source) == (found["id"], Source.COMPETITOR)
    assert page.profile.username is None  # not asked in that recording: None, not a guess
    assert page.after == "after"
    assert [m.id for m in page.media] == [item["id"] for item in found["media"]["data"]]
    first, item = page.media[0], found["media"]["data"][0]
    assert (first.account_id, first.source, first.media_type) == (
        found["id"],
        Source.COMPETITOR,
        "VIDEO",
    )
    assert first.details == MediaDetails(
        caption=item.get("caption"),
        like_count=item["like_count"],
        comments_count=item["comments_count"],
    )
    assert first.permalink == item["permalink"]
    assert (
        first.timestamp is not None and first.timestamp.isoformat() == "2021-10-22T14:00:39+00:00"
    )


def test_the_recorded_last_page_has_no_next_cursor(shared_fixtures: Path) -> None:
    page = parse_discovery(recorded(shared_fixtures, 2), profile=False)
    assert page.profile is None
    assert page.after is None  # only `before`: the last page
    assert len(page.media) == 5


def test_profile_fields_and_omitted_ones() -> None:
    reply = {
        "business_discovery": {
            "id": "17841401441775531",
            "username": "bluebottle",
            "followers_count": 267788,
            "media_count": 1205,
            "media": {"data": [{"id": "1", "comments_count": 3, "media_type": "IMAGE"}]},
        },
        "id": "17841405309211844",
    }
    page = parse_discovery(reply)
    assert page.profile is not None
    assert (page.profile.username, page.profile.followers_count, page.profile.website) == (
        "bluebottle",
        267788,
        None,
    )
    assert page.media[0].details == MediaDetails(comments_count=3)  # hidden likes: None
    assert page.after is None


@pytest.mark.parametrize(
    "reply",
    [
        {},
        {"business_discovery": []},
        {"business_discovery": {"media": {"data": []}}},
        {"business_discovery": {"id": "1", "media": {"data": [{"caption": "x"}]}}},
        {"business_discovery": {"id": "1", "followers_count": "many"}},
        {"business_discovery": {"id": "1", "media": {"data": [{"id": "2", "like_count": True}]}}},
    ],
)
def test_off_shape_replies_are_malformed(reply: object) -> None:
    with pytest.raises(MalformedReply):
        parse_discovery(reply)


def test_an_empty_page_with_a_cursor_ends_the_paging() -> None:
    reply = {
        "business_discovery": {
            "id": "1",
            "media": {"data": [], "paging": {"cursors": {"after": "x"}}},
        }
    }
    assert parse_discovery(reply).after is None


def test_fields_expressions() -> None:
    # The profile fields are the catalogue's IG User fields, as an owned account's profile asks.
    profile = object_fields("v25.0").user
    assert discovery_fields("shop", media_limit=0, profile=profile) == (
        "business_discovery.username(shop){id,username,name,biography,website,followers_count,"
        "follows_count,media_count,profile_picture_url}"
    )
    assert discovery_fields("shop", media_limit=12, after="QVFI") == (
        "business_discovery.username(shop){id,media.after(QVFI).limit(12){id,caption,like_count,"
        "comments_count,timestamp,permalink,media_type,media_product_type}}"
    )
    with pytest.raises(ValueError):
        discovery_fields("a){x", media_limit=1)


def test_unknown_username_is_skippable_not_account_fatal() -> None:
    body = orjson.dumps(
        {
            "error": {
                "message": "Invalid user id",
                "type": "OAuthException",
                "code": 110,
                "error_subcode": 2207013,
                "is_transient": False,
                "error_user_title": "Cannot find User",
                "error_user_msg": "The user with username: nobody cannot be found.",
                "fbtrace_id": "AbCdEf",
            }
        }
    )
    error = classify(400, {}, body)
    assert isinstance(error, ProfileUnavailable)
    assert isinstance(error, Skippable) and not isinstance(error, AccountFatal)
    assert (error.code, error.subcode, error.fbtrace_id) == (110, 2207013, "AbCdEf")


def test_an_unknown_username_does_not_fail_the_asking_account() -> None:
    health = HealthWatch(60.0, host="graph.facebook.com", api_version="v25.0")
    error = ProfileUnavailable("Invalid user id", status=400, code=110, subcode=2207013)
    assert health.failed("17841400000000001", error) is None
    assert health.unanswered("17841400000000001") is None
