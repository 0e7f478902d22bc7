"""The packaged metric catalogue: loading, validation, and the canonical facts it must encode."""

from __future__ import annotations

import re
from datetime import date

import pytest

from harvester.catalog import (
    ApiVersion,
    CatalogError,
    MediaKind,
    load_catalog,
    media_kind,
    parse_catalog,
)

V = ApiVersion.parse


def test_load_catalog_is_parsed_once() -> None:
    assert load_catalog() is load_catalog()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("v17.0", ApiVersion(17, 0)), ("v21.0", ApiVersion(21, 0)), ("v2.12", ApiVersion(2, 12))],
)
def test_api_version_parse(text: str, expected: ApiVersion) -> None:
    assert ApiVersion.parse(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize(
    "text", ["17.0", "v17", "V17.0", "v17.0 ", "", "vx.0", "v17.0.1", "v1700.0"]
)
def test_api_version_parse_rejects_and_names_the_string(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        ApiVersion.parse(text)


def test_api_version_ordering() -> None:
    assert V("v9.0") < V("v17.0") < V("v17.1") < V("v18.0")
    assert sorted([V("v22.0"), V("v3.2"), V("v18.0")]) == [V("v3.2"), V("v18.0"), V("v22.0")]


@pytest.mark.parametrize(
    ("media_type", "product_type", "kind"),
    [
        ("IMAGE", "FEED", MediaKind.PHOTO),
        ("IMAGE", None, MediaKind.PHOTO),
        ("VIDEO", "FEED", MediaKind.VIDEO),
        ("VIDEO", None, MediaKind.VIDEO),
        ("CAROUSEL_ALBUM", "FEED", MediaKind.CAROUSEL),
        ("CAROUSEL_ALBUM", None, MediaKind.CAROUSEL),
        ("VIDEO", "REELS", MediaKind.REEL),
        ("IMAGE", "STORY", MediaKind.STORY),
        ("VIDEO", "STORY", MediaKind.STORY),
        ("IMAGE", "AD", None),
        ("VIDEO", "AD", None),
        ("IMAGE", "REELS", None),
        ("CAROUSEL_ALBUM", "STORY", None),
        ("image", "FEED", None),
        ("", "", None),
    ],
)
def test_media_kind(media_type: str, product_type: str | None, kind: MediaKind | None) -> None:
    assert media_kind(media_type, product_type) is kind


def _names(kind: MediaKind, version: str) -> set[str]:
    return {m.name for m in load_catalog().media_metrics_for(kind, V(version))}


# (metric, kinds, first version accepting it or None, first version rejecting it or None, removal)
CANONICAL = [
    ("engagement", "PHOTO VIDEO", None, "v18.0", date(2023, 12, 11)),
    ("impressions", "PHOTO VIDEO STORY", None, "v22.0", date(2025, 4, 21)),
    ("impressions", "CAROUSEL", "v18.0", "v22.0", date(2025, 4, 21)),
    ("reach", "PHOTO VIDEO STORY REEL", None, None, None),
    ("reach", "CAROUSEL", "v18.0", None, None),
    ("saved", "PHOTO VIDEO REEL", None, None, None),
    ("saved", "CAROUSEL", "v18.0", None, None),
    ("video_views", "VIDEO", None, "v21.0", date(2025, 1, 8)),
    ("video_views", "CAROUSEL", "v18.0", "v21.0", date(2025, 1, 8)),
    ("carousel_album_engagement", "CAROUSEL", None, "v18.0", date(2023, 12, 11)),
    ("carousel_album_impressions", "CAROUSEL", None, "v18.0", date(2023, 12, 11)),
    ("carousel_album_reach", "CAROUSEL", None, "v18.0", date(2023, 12, 11)),
    ("carousel_album_saved", "CAROUSEL", None, "v18.0", date(2023, 12, 11)),
    ("carousel_album_video_views", "CAROUSEL", None, "v18.0", date(2023, 12, 11)),
    ("exits", "STORY", None, "v18.0", date(2023, 12, 11)),
    ("taps_forward", "STORY", None, "v18.0", date(2023, 12, 11)),
    ("taps_back", "STORY", None, "v18.0", date(2023, 12, 11)),
    ("replies", "STORY", None, None, None),
    ("plays", "REEL", None, "v22.0", date(2025, 4, 21)),
    ("clips_replays_count", "REEL", "v18.0", "v22.0", date(2025, 4, 21)),
    ("ig_reels_aggregated_all_plays_count", "REEL", "v18.0", "v22.0", date(2025, 4, 21)),
    ("ig_reels_avg_watch_time", "REEL", None, None, None),
    ("ig_reels_video_view_total_time", "REEL", None, None, None),
    ("follows", "PHOTO VIDEO CAROUSEL STORY", "v18.0", None, None),
    ("profile_visits", "PHOTO VIDEO CAROUSEL STORY", "v18.0", None, None),
    ("profile_activity", "PHOTO VIDEO CAROUSEL STORY", "v18.0", None, None),
    ("navigation", "STORY", "v18.0", None, None),
    ("views", "PHOTO VIDEO CAROUSEL REEL STORY", "v22.0", None, None),
    ("reposts", "PHOTO VIDEO CAROUSEL REEL", "v25.0", None, None),
]


@pytest.mark.parametrize(("name", "kinds", "since", "until", "removed"), CANONICAL)
def test_canonical_media_facts(
    name: str, kinds: str, since: str | None, until: str | None, removed: date | None
) -> None:
    wanted = frozenset(MediaKind(k) for k in kinds.split())
    matching = [m for m in load_catalog().media_metrics if m.name == name and m.kinds & wanted]
    assert len(matching) == 1, matching
    (metric,) = matching
    assert metric.kinds == wanted
    assert metric.since == (V(since) if since else None)
    assert metric.until == (V(until) if until else None)
    assert metric.removed_everywhere_on == removed


def test_shapes_and_breakdowns() -> None:
    catalog = load_catalog()
    total_value = {m.name for m in catalog.media_metrics if m.shape == "total_value"}
    assert total_value == {
        "total_interactions",
        "profile_activity",
        "navigation",
        "views",
        "reposts",
    }
    breakdowns = {m.name: m.breakdown for m in catalog.media_metrics if m.breakdown}
    assert breakdowns == {
        "profile_activity": "action_type",
        "navigation": "story_navigation_action_type",
    }
    # total_interactions replied in the values shape on reels before v18.
    (old,) = catalog.media_metrics_for(MediaKind.REEL, V("v17.0"))[6:7]
    assert (old.name, old.shape) == ("total_interactions", "values")


def test_interactions_metrics_by_kind() -> None:
    for kind in ("PHOTO", "VIDEO", "CAROUSEL"):
        assert {"likes", "comments", "shares", "total_interactions"} <= _names(
            MediaKind(kind), "v18.0"
        )
        assert not {"likes", "comments", "shares"} & _names(MediaKind(kind), "v17.0")
    assert {"shares", "total_interactions"} <= _names(MediaKind.STORY, "v18.0")
    assert not {"likes", "comments"} & _names(MediaKind.STORY, "v25.0")
    for version in ("v17.0", "v25.0"):
        assert {"likes", "comments", "shares", "total_interactions"} <= _names(
            MediaKind.REEL, version
        )


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (
            "v17.0",
            "impressions reach follower_count profile_views website_clicks email_contacts "
            "phone_call_clicks text_message_clicks get_directions_clicks audience_city "
            "audience_country audience_gender_age audience_locale online_followers",
        ),
        (
            "v21.0",
            "impressions reach follower_count online_followers accounts_engaged "
            "total_interactions likes comments shares saves replies follows_and_unfollows "
            "profile_links_taps follower_demographics engaged_audience_demographics "
            "reached_audience_demographics",
        ),
        (
            "v22.0",
            "reach follower_count online_followers accounts_engaged total_interactions likes "
            "comments shares saves replies follows_and_unfollows profile_links_taps views "
            "follower_demographics engaged_audience_demographics reached_audience_demographics",
        ),
    ],
)
def test_account_metrics_for(version: str, expected: str) -> None:
    names = [m.name for m in load_catalog().account_metrics_for(V(version))]
    assert names == expected.split()


def test_account_metric_details() -> None:
    by_name = {m.name: m for m in load_catalog().account_metrics}
    assert by_name["impressions"].periods == ("day", "week", "days_28")
    assert by_name["audience_city"].metric_type == "lifetime_map"
    assert by_name["audience_city"].removed_everywhere_on == date(2023, 12, 11)
    assert by_name["profile_views"].until == V("v21.0")
    demographics = by_name["follower_demographics"]
    assert demographics.metric_type == "demographics"
    assert demographics.breakdowns == ("age", "gender", "country", "city")
    assert demographics.timeframes == ("this_week", "this_month")


GOOD = '[[media]]\nname = "reach"\nkinds = ["PHOTO"]\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[media]\n", "not valid TOML"),
        ('colour = "red"\n' + GOOD, "unknown top-level key"),
        ("media = 3\n", r"media: expected an array of tables"),
        (GOOD + 'colour = "red"\n', r"media\[0\]: unknown key\(s\) colour"),
        (GOOD + 'since = "18"\n', r"media\[0\]\.since: bad Graph API version '18'"),
        (GOOD + 'until = "v18"\n', r"media\[0\]\.until: bad Graph API version 'v18'"),
        (GOOD + 'since = "v18.0"\nuntil = "v18.0"\n', r"media\[0\]: since v18\.0 is not before"),
        ('[[media]]\nname = "reach"\nkinds = ["GIF"]\n', r"media\[0\]\.kinds: unknown kind"),
        ('[[media]]\nname = "reach"\nkinds = []\n', r"media\[0\]\.kinds: must not be empty"),
        ('[[media]]\nkinds = ["PHOTO"]\n', r"media\[0\]\.name: expected a non-empty string"),
        (GOOD + 'shape = "cube"\n', r"media\[0\]\.shape: 'cube' is not one of"),
        (GOOD + 'removed_everywhere_on = "2023-12-11"\n', r"removed_everywhere_on: expected a"),
        (GOOD + "removed_everywhere_on = 2023-12-11T00:00:00\n", "expected a TOML date"),
        (GOOD + GOOD, r"media\[1\]: 'reach' overlaps media\[0\]"),
        (
            '[[account]]\nname = "reach"\nperiods = ["day"]\nmetric_type = "pie"\n',
            r"account\[0\]\.metric_type: 'pie' is not one of",
        ),
        ('[[account]]\nname = "reach"\nmetric_type = "time_series"\n', r"periods: must not be"),
    ],
)
def test_parse_catalog_rejects_with_a_named_key(text: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        parse_catalog(text)


def test_same_name_may_repeat_for_other_kinds_or_versions() -> None:
    text = GOOD + '[[media]]\nname = "reach"\nkinds = ["CAROUSEL"]\nsince = "v18.0"\n'
    text += '[[media]]\nname = "plays"\nkinds = ["REEL"]\nuntil = "v18.0"\n'
    text += '[[media]]\nname = "plays"\nkinds = ["REEL"]\nsince = "v18.0"\n'
    catalog = parse_catalog(text)
    assert [m.name for m in catalog.media_metrics_for(MediaKind.REEL, V("v18.0"))] == ["plays"]
