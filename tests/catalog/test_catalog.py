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
]

# The media metrics Meta added for every version in 2025-2026 (notes "What changed through v27.0"):
# metric -> (kinds, date added everywhere, logins, conditional, fractional).
ADDED = {
    "reels_skip_rate": ("REEL", date(2025, 12, 3), "facebook instagram", None, True),
    "crossposted_views": (
        "REEL",
        date(2025, 12, 3),
        "facebook instagram",
        "shared_to_facebook",
        False,
    ),
    "total_likes": ("PHOTO VIDEO CAROUSEL REEL", date(2026, 4, 22), "facebook", None, False),
    "total_comments": ("PHOTO VIDEO CAROUSEL REEL", date(2026, 4, 22), "facebook", None, False),
    "total_views": ("PHOTO VIDEO CAROUSEL REEL STORY", date(2026, 4, 22), "facebook", None, False),
    "link_clicks": ("STORY", date(2026, 6, 22), "facebook", None, False),
}


@pytest.mark.parametrize("name", sorted(ADDED))
def test_the_2025_2026_media_metrics(name: str) -> None:
    kinds, added, logins, conditional, fractional = ADDED[name]
    [metric] = [m for m in load_catalog().media_metrics if m.name == name]
    assert metric.kinds == frozenset(MediaKind(k) for k in kinds.split())
    assert (metric.since, metric.until) == (None, None)  # for all versions
    assert metric.added_everywhere_on == added
    assert metric.logins == frozenset(logins.split())
    assert (metric.conditional, metric.fractional) == (conditional, fractional)


def test_facebook_views_and_reposts_cover_their_kinds_in_every_version() -> None:
    catalog = load_catalog()
    for version in ("v18.0", "v21.0", "v25.0", "v27.0"):
        for kind in MediaKind:
            names = {m.name for m in catalog.media_metrics_for(kind, V(version), unasked=True)}
            assert {"reposts", "facebook_views"} <= names, (kind, version)
    views = [m for m in catalog.media_metrics if m.name == "facebook_views"]
    assert {m.conditional for m in views} == {"shared_to_facebook"}
    assert {m.added_everywhere_on: m.kinds for m in views} == {
        date(2025, 12, 3): {MediaKind.REEL},
        date(2026, 4, 22): {MediaKind.PHOTO, MediaKind.VIDEO, MediaKind.CAROUSEL, MediaKind.STORY},
    }
    assert catalog.fractional_metrics == {"reels_skip_rate"}


def test_the_2025_2026_account_metrics() -> None:
    catalog = load_catalog()
    [reposts] = [m for m in catalog.account_metrics if m.name == "reposts"]
    assert (reposts.periods, reposts.metric_type, reposts.breakdowns) == (
        ("day",),
        "total_value",
        (),
    )
    assert reposts.added_everywhere_on == date(2025, 12, 3)
    reach = {m.metric_type: m for m in catalog.account_metrics if m.name == "reach"}
    assert sorted(reach) == ["time_series", "total_value"]
    assert reach["total_value"].breakdowns == ("follow_type", "media_product_type")
    assert reach["total_value"].periods == ("day",)


def test_version_dates() -> None:
    versions = load_catalog().versions
    assert [str(v.version) for v in versions] == [f"v{n}.0" for n in range(18, 28)]
    by_name = {str(v.version): (v.released, v.expires) for v in versions}
    assert by_name["v21.0"][1] == date(2027, 1, 21)
    assert by_name["v25.0"] == (date(2026, 2, 18), date(2028, 7, 29))
    assert by_name["v26.0"] == (date(2026, 7, 29), None)
    assert by_name["v27.0"] == (date(2026, 11, 4), None)
    assert by_name["v18.0"][1] == date(2026, 1, 26)
    assert by_name["v20.0"][1] == date(2026, 9, 24)


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
            "audience_country audience_gender_age audience_locale online_followers reposts",
        ),
        (
            "v21.0",
            "impressions reach follower_count online_followers accounts_engaged "
            "total_interactions likes comments shares saves replies follows_and_unfollows "
            "profile_links_taps reposts reach follower_demographics "
            "engaged_audience_demographics reached_audience_demographics",
        ),
        (
            "v22.0",
            "reach follower_count online_followers accounts_engaged total_interactions likes "
            "comments shares saves replies follows_and_unfollows profile_links_taps views "
            "reposts reach follower_demographics engaged_audience_demographics "
            "reached_audience_demographics",
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
        (GOOD + 'login = ["facebook", "myspace"]\n', r"media\[0\]\.login: .* is not a list of"),
        (GOOD + "login = []\n", r"media\[0\]\.login"),
        (GOOD + 'value = "float"\n', r"media\[0\]\.value: 'float' is not one of"),
        (GOOD + 'asked = "no"\n', r"media\[0\]\.asked: expected true or false"),
        (GOOD + 'conditional = ""\n', r"media\[0\]\.conditional: expected a non-empty"),
        ('[[version]]\nname = "v25.0"\n', r"version\[0\]: a version needs a name and a released"),
        (
            '[[version]]\nname = "v25.0"\nreleased = 2026-02-18\nexpires = 2026-01-01\n',
            r"version\[0\]: expires 2026-01-01 is not after released",
        ),
        (
            '[[version]]\nname = "v25.0"\nreleased = 2026-02-18\n'
            '[[version]]\nname = "v24.0"\nreleased = 2025-10-08\n',
            r"version: entries must be unique and in ascending order",
        ),
        (
            '[[account]]\nname = "reach"\nperiods = ["day"]\nmetric_type = "time_series"\n' * 2,
            r"account\[1\]: 'reach' overlaps account\[0\]",
        ),
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


def test_an_account_metric_may_be_both_a_series_and_a_total() -> None:
    series = '[[account]]\nname = "reach"\nperiods = ["day"]\nmetric_type = "time_series"\n'
    total = '[[account]]\nname = "reach"\nperiods = ["day"]\nmetric_type = "total_value"\n'
    catalog = parse_catalog(series + total + "asked = false\n")
    assert [m.metric_type for m in catalog.account_metrics_for(V("v25.0"))] == ["time_series"]
    both = catalog.account_metrics_for(V("v25.0"), unasked=True)
    assert [m.metric_type for m in both] == ["time_series", "total_value"]


def test_login_filters_and_defaults_to_both() -> None:
    text = GOOD + '[[media]]\nname = "link_clicks"\nkinds = ["PHOTO"]\nlogin = ["facebook"]\n'
    catalog = parse_catalog(text)
    assert [
        m.name for m in catalog.media_metrics_for(MediaKind.PHOTO, V("v25.0"), "instagram")
    ] == ["reach"]
    assert [m.name for m in catalog.media_metrics_for(MediaKind.PHOTO, V("v25.0"), "facebook")] == [
        "reach",
        "link_clicks",
    ]
    assert [m.name for m in catalog.media_metrics_for(MediaKind.PHOTO, V("v25.0"))] == [
        "reach",
        "link_clicks",
    ]
