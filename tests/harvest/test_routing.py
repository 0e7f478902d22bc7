"""Routing: the exact metric requests for each kind of media at each API version."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harvester.catalog import ApiVersion, MediaKind, load_catalog, media_kind
from harvester.harvest.routing import EMPTY_ROUTE, Route, metrics_table, route

KINDS = {
    "PHOTO": ("IMAGE", "FEED"),
    "VIDEO": ("VIDEO", "FEED"),
    "CAROUSEL": ("CAROUSEL_ALBUM", "FEED"),
    "REEL": ("VIDEO", "REELS"),
    "STORY_IMAGE": ("IMAGE", "STORY"),
    "STORY_VIDEO": ("VIDEO", "STORY"),
}

FEED_V18 = "total_interactions shares likes comments follows profile_visits profile_activity"
PA = ("profile_activity", "action_type")
NAV = ("navigation", "story_navigation_action_type")
REELS_V17 = (
    "reach saved comments likes plays shares total_interactions ig_reels_avg_watch_time "
    "ig_reels_video_view_total_time"
)
REELS_V18 = (
    "reach saved comments likes plays shares total_interactions ig_reels_avg_watch_time "
    "ig_reels_video_view_total_time clips_replays_count ig_reels_aggregated_all_plays_count"
)
REELS_V22 = (
    "reach saved comments likes shares total_interactions ig_reels_avg_watch_time "
    "ig_reels_video_view_total_time views"
)
STORY_V17 = "impressions reach exits taps_forward taps_back replies"
STORY_V18 = (
    "impressions reach replies total_interactions shares follows profile_visits profile_activity "
    "navigation"
)
STORY_V22 = (
    "reach replies total_interactions shares follows profile_visits profile_activity navigation "
    "views"
)

# Meta added these for ALL versions (2025-12 to 2026-06), so every version's set ends with them.
NEW_FEED = "reposts total_likes total_comments total_views"
NEW_REEL = "reposts reels_skip_rate total_likes total_comments total_views"
NEW_STORY = "reposts total_views link_clicks"

# kind -> version -> (metrics, breakdowns), exactly, in request order.
EXPECTED: dict[str, dict[str, tuple[str, tuple[tuple[str, str], ...]]]] = {
    "PHOTO": {
        "v17.0": (f"engagement impressions reach saved {NEW_FEED}", ()),
        "v18.0": (f"impressions reach saved {FEED_V18} {NEW_FEED}", (PA,)),
        "v21.0": (f"impressions reach saved {FEED_V18} {NEW_FEED}", (PA,)),
        "v22.0": (f"reach saved {FEED_V18} views {NEW_FEED}", (PA,)),
        "v25.0": (f"reach saved {FEED_V18} views {NEW_FEED}", (PA,)),
    },
    "VIDEO": {
        "v17.0": (f"engagement impressions reach saved video_views {NEW_FEED}", ()),
        "v18.0": (f"impressions reach saved video_views {FEED_V18} {NEW_FEED}", (PA,)),
        "v21.0": (f"impressions reach saved {FEED_V18} {NEW_FEED}", (PA,)),
        "v22.0": (f"reach saved {FEED_V18} views {NEW_FEED}", (PA,)),
        "v25.0": (f"reach saved {FEED_V18} views {NEW_FEED}", (PA,)),
    },
    "CAROUSEL": {
        "v17.0": (
            "carousel_album_engagement carousel_album_impressions carousel_album_reach "
            f"carousel_album_saved carousel_album_video_views {NEW_FEED}",
            (),
        ),
        "v18.0": (f"impressions reach saved video_views {FEED_V18} {NEW_FEED}", (PA,)),
        "v21.0": (f"impressions reach saved {FEED_V18} {NEW_FEED}", (PA,)),
        "v22.0": (f"reach saved {FEED_V18} views {NEW_FEED}", (PA,)),
        "v25.0": (f"reach saved {FEED_V18} views {NEW_FEED}", (PA,)),
    },
    "REEL": {
        "v17.0": (f"{REELS_V17} {NEW_REEL}", ()),
        "v18.0": (f"{REELS_V18} {NEW_REEL}", ()),
        "v21.0": (f"{REELS_V18} {NEW_REEL}", ()),
        "v22.0": (f"{REELS_V22} {NEW_REEL}", ()),
        "v25.0": (f"{REELS_V22} {NEW_REEL}", ()),
    },
    "STORY_IMAGE": {
        "v17.0": (f"{STORY_V17} {NEW_STORY}", ()),
        "v18.0": (f"{STORY_V18} {NEW_STORY}", (PA, NAV)),
        "v21.0": (f"{STORY_V18} {NEW_STORY}", (PA, NAV)),
        "v22.0": (f"{STORY_V22} {NEW_STORY}", (PA, NAV)),
        "v25.0": (f"{STORY_V22} {NEW_STORY}", (PA, NAV)),
    },
}
EXPECTED["STORY_VIDEO"] = EXPECTED["STORY_IMAGE"]

CASES = [
    (kind, version, metrics, breakdowns)
    for kind, by_version in EXPECTED.items()
    for version, (metrics, breakdowns) in by_version.items()
]


@pytest.mark.parametrize(("kind", "version", "metrics", "breakdowns"), CASES)
def test_route_table(
    kind: str, version: str, metrics: str, breakdowns: tuple[tuple[str, str], ...]
) -> None:
    media_type, product_type = KINDS[kind]
    got = route(media_type, product_type, version)
    assert (got.metrics, got.breakdowns) == (tuple(metrics.split()), breakdowns)
    assert route(media_type, product_type, ApiVersion.parse(version)) == got


def test_seed_sets_below_v18() -> None:
    """Below v18 every metric of the brief's list is harvested for its media type."""
    assert route("IMAGE", "FEED", "v17.0").metrics == (
        "engagement",
        "impressions",
        "reach",
        "saved",
        *NEW_FEED.split(),
    )
    assert route("VIDEO", "FEED", "v16.0").metrics == (
        "engagement",
        "impressions",
        "reach",
        "saved",
        "video_views",
        *NEW_FEED.split(),
    )
    assert set(route("CAROUSEL_ALBUM", None, "v11.0").metrics) == {
        "carousel_album_engagement",
        "carousel_album_impressions",
        "carousel_album_reach",
        "carousel_album_saved",
        "carousel_album_video_views",
        *NEW_FEED.split(),
    }


@pytest.mark.parametrize("version", ["v17.0", "v21.0", "v25.0"])
@pytest.mark.parametrize(("media_type", "product_type"), list(KINDS.values()))
def test_children_are_never_routed(version: str, media_type: str, product_type: str) -> None:
    assert route(media_type, product_type, version, is_child=True) == EMPTY_ROUTE


@pytest.mark.parametrize(
    ("media_type", "product_type"),
    [("IMAGE", "AD"), ("VIDEO", "AD"), ("CAROUSEL_ALBUM", "REELS"), ("GIF", "FEED"), ("", None)],
)
def test_unknown_kinds_are_not_routed(media_type: str, product_type: str | None) -> None:
    assert route(media_type, product_type, "v21.0") == EMPTY_ROUTE
    assert not route(media_type, product_type, "v21.0")


def test_dropped_metrics_are_left_out() -> None:
    dropped = frozenset({"impressions", "profile_activity", "not_a_metric"})
    assert route("IMAGE", "STORY", "v21.0", dropped=dropped) == Route(
        metrics=(
            "reach",
            "replies",
            "total_interactions",
            "shares",
            "follows",
            "profile_visits",
            "navigation",
            *NEW_STORY.split(),
        ),
        breakdowns=(NAV,),
        conditional=(("shared_to_facebook", ("facebook_views",)),),
    )


def test_dropped_may_be_a_plain_set() -> None:
    plain: set[str] = {"plays"}
    assert "plays" not in route("VIDEO", "REELS", "v17.0", dropped=plain).metrics  # type: ignore[arg-type]


def test_breakdowns_are_routed_metrics() -> None:
    for version in ("v18.0", "v25.0"):
        for media_type, product_type in KINDS.values():
            result = route(media_type, product_type, version)
            assert {metric for metric, _ in result.breakdowns} <= set(result.metrics)


def test_route_is_cached() -> None:
    first = route("IMAGE", "FEED", "v21.0", dropped=frozenset({"reach"}))
    assert route("IMAGE", "FEED", ApiVersion(21, 0), dropped=frozenset({"reach"})) is first


def test_bad_version_string_raises_value_error() -> None:
    with pytest.raises(ValueError, match=r"'21\.0'"):
        route("IMAGE", "FEED", "21.0")


BOTH = "facebook+instagram"


def test_metrics_table() -> None:
    rows = metrics_table("v18.0")
    assert rows[:3] == [
        ("PHOTO", "impressions", BOTH, "values"),
        ("PHOTO", "reach", BOTH, "values"),
        ("PHOTO", "saved", BOTH, "values"),
    ]
    assert ("PHOTO", "total_interactions", BOTH, "total_value") in rows
    navigation = (
        "STORY",
        "navigation",
        BOTH,
        "total_value, breakdown=story_navigation_action_type",
    )
    assert navigation in rows
    assert {row[0] for row in metrics_table("v17.0")} == {
        "PHOTO",
        "VIDEO",
        "CAROUSEL",
        "REEL",
        "STORY",
        "ACCOUNT",
    }
    v17_photo = [row[1] for row in metrics_table("v17.0") if row[0] == "PHOTO"]
    assert v17_photo[:4] == ["engagement", "impressions", "reach", "saved"]


def test_metrics_table_names_login_fraction_and_condition() -> None:
    rows = {
        (kind, metric): (login, details) for kind, metric, login, details in metrics_table("v27.0")
    }
    assert rows["REEL", "reels_skip_rate"] == (BOTH, "values, fraction")
    assert rows["REEL", "crossposted_views"] == (BOTH, "values, only if shared_to_facebook")
    assert rows["STORY", "link_clicks"] == ("facebook", "values")
    assert rows["PHOTO", "total_likes"] == ("facebook", "values")
    assert rows["ACCOUNT", "reposts"] == (BOTH, "total_value, periods=day")
    # Every metric is asked now (metrics.toml has no `asked = false` left).
    assert not [r for r in metrics_table("v27.0") if "not asked yet" in r[3]]
    reach = [r for r in metrics_table("v27.0") if r[:2] == ("ACCOUNT", "reach")]
    assert [r[3] for r in reach] == [
        "time_series, periods=day/week/days_28",
        "total_value, periods=day, breakdowns=follow_type/media_product_type",
    ]


def test_conditional_metrics_are_never_in_the_normal_request() -> None:
    reel = route("VIDEO", "REELS", "v27.0")
    assert reel.conditional == (("shared_to_facebook", ("crossposted_views", "facebook_views")),)
    assert not {"crossposted_views", "facebook_views"} & set(reel.metrics)
    for media_type, product_type in (("IMAGE", "FEED"), ("VIDEO", "FEED"), ("IMAGE", "STORY")):
        found = route(media_type, product_type, "v17.0")
        assert found.conditional == (("shared_to_facebook", ("facebook_views",)),)
    dropped = route("VIDEO", "REELS", "v27.0", dropped=frozenset({"facebook_views"}))
    assert dropped.conditional == (("shared_to_facebook", ("crossposted_views",)),)


def test_login_leaves_out_facebook_only_metrics() -> None:
    catalog = load_catalog()
    facebook_only = {m.name for m in catalog.media_metrics if m.logins == frozenset({"facebook"})}
    assert facebook_only == {"total_likes", "total_comments", "total_views", "link_clicks"}
    assert route("VIDEO", "REELS", "v25.0") == route("VIDEO", "REELS", "v25.0", login="facebook")
    for media_type, product_type in KINDS.values():
        instagram = route(media_type, product_type, "v27.0", login="instagram")
        assert not facebook_only & set(instagram.metrics)
    story = set(route("IMAGE", "STORY", "v27.0").metrics)
    assert story - set(route("IMAGE", "STORY", "v27.0", login="instagram").metrics) == {
        "link_clicks",
        "total_views",
    }
    # The catalogue's own answer, with the metrics not asked yet, agrees.
    kind, version = MediaKind.STORY, ApiVersion(27, 0)
    instagram_story = {
        m.name for m in catalog.media_metrics_for(kind, version, "instagram", unasked=True)
    }
    facebook_story = {
        m.name for m in catalog.media_metrics_for(kind, version, "facebook", unasked=True)
    }
    assert facebook_story - instagram_story == {"link_clicks", "total_views"}


TYPES = st.one_of(st.sampled_from(["IMAGE", "VIDEO", "CAROUSEL_ALBUM", "REELS"]), st.text())
PRODUCTS = st.one_of(st.none(), st.sampled_from(["FEED", "REELS", "STORY", "AD"]), st.text())
VERSIONS = st.builds(ApiVersion, st.integers(2, 30), st.integers(0, 3))


@settings(max_examples=300)
@given(media_type=TYPES, product_type=PRODUCTS, version=VERSIONS, is_child=st.booleans())
def test_route_never_crashes_and_routes_only_catalogued_metrics(
    media_type: str, product_type: str | None, version: ApiVersion, is_child: bool
) -> None:
    result = route(media_type, product_type, version, is_child=is_child)
    kind = media_kind(media_type, product_type)
    if is_child or kind is None:
        assert result == EMPTY_ROUTE
        return
    allowed = {m.name for m in load_catalog().media_metrics_for(kind, version)}
    assert set(result.metrics) <= allowed
    assert len(set(result.metrics)) == len(result.metrics)


@settings(max_examples=100)
@given(version=VERSIONS, dropped=st.frozensets(st.sampled_from(["reach", "saved", "views", "x"])))
def test_dropped_never_routed(version: ApiVersion, dropped: frozenset[str]) -> None:
    for media_type, product_type in KINDS.values():
        assert not dropped & set(route(media_type, product_type, version, dropped=dropped).metrics)
