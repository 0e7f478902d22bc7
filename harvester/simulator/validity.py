"""The simulator's own strictness tables: metrics, fields, periods and breakdowns per version.

Kept apart from the harvester's catalogue on purpose (the simulator never imports it), so a wrong
row on one side shows up as a failing test instead of a silent agreement. Version ranges are
[from, until); `removed` is Meta's all-version removal date and `added` the date Meta added a
metric to every version, both applied only under `as_of`. Without `as_of` the tables are lenient
in time: nothing is removed by date, and every all-version addition is there in every version.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import NamedTuple

from harvester.simulator.versions import MAX_VERSION, MIN_VERSION, parse_version, served_version

__all__ = ["MAX_VERSION", "MIN_VERSION", "parse_version"]

NO_END = 10_000

PHOTO, VIDEO, CAROUSEL, REEL, STORY = "PHOTO", "VIDEO", "CAROUSEL", "REEL", "STORY"
KINDS = (PHOTO, VIDEO, CAROUSEL, REEL, STORY)
# Names a settings table may use for a group of kinds: Meta's product types.
KIND_GROUPS: dict[str, tuple[str, ...]] = {
    "FEED": (PHOTO, VIDEO, CAROUSEL),
    "REELS": (REEL,),
    **{k: (k,) for k in KINDS},
}

REMOVED_V18 = date(2023, 12, 11)
REMOVED_V21 = date(2025, 1, 8)
REMOVED_V22 = date(2025, 4, 21)
# From v21 (and under as_of on/after this date in every version) media created on or after it
# reject `impressions`.
IMPRESSIONS_CUTOFF = date(2024, 7, 2)
# Media metrics Meta added for all versions (Instagram Platform changelog, notes "through v27.0").
ADDED_2025_12 = date(2025, 12, 3)
ADDED_2026_04 = date(2026, 4, 22)
ADDED_2026_06 = date(2026, 6, 22)

FACEBOOK, INSTAGRAM = "facebook", "instagram"
LOGINS = (FACEBOOK, INSTAGRAM)
# Metrics that exist with one login only, as data a login switches (Instagram Login: later issue).
LOGIN_ONLY: dict[str, frozenset[str]] = {
    m: frozenset({FACEBOOK})
    for m in ("total_likes", "total_comments", "total_views", "link_clicks")
}
# Metrics that exist only for media shared to Facebook: asking one for any other media fails the
# whole request (code 100), as at Meta.
SHARED_TO_FACEBOOK_ONLY = frozenset({"crossposted_views", "facebook_views"})
# Legacy FEED videos that refuse these (behind `SimulatorSettings.legacy_video_refusals`).
LEGACY_VIDEO_REFUSED = ("total_interactions", "likes", "comments")


class MetricRow(NamedTuple):
    metric: str
    kinds: frozenset[str]
    since: int
    until: int
    removed: date | None
    added: date | None = None


def _rows(
    metrics: str, kinds: set[str], since: int = 0, until: int = NO_END, removed: date | None = None
) -> list[MetricRow]:
    return [MetricRow(m, frozenset(kinds), since, until, removed) for m in metrics.split()]


def _added(metrics: str, kinds: set[str], on: date) -> list[MetricRow]:
    """Metrics Meta added to every version on `on`."""
    return [MetricRow(m, frozenset(kinds), 0, NO_END, None, on) for m in metrics.split()]


_P, _V, _C, _R, _S = PHOTO, VIDEO, CAROUSEL, REEL, STORY
MEDIA_METRICS: tuple[MetricRow, ...] = tuple(
    _rows("engagement", {_P, _V}, until=18, removed=REMOVED_V18)
    + _rows("impressions", {_P, _V, _S}, until=22, removed=REMOVED_V22)
    + _rows("impressions", {_C}, 18, 22, REMOVED_V22)
    + _rows("reach", {_P, _V, _S, _R})
    + _rows("reach", {_C}, 18)
    + _rows("saved", {_P, _V, _R})
    + _rows("saved", {_C}, 18)
    + _rows("video_views", {_V}, until=21, removed=REMOVED_V21)
    + _rows("video_views", {_C}, 18, 21, REMOVED_V21)
    + _rows(
        "carousel_album_engagement carousel_album_impressions carousel_album_reach "
        "carousel_album_saved carousel_album_video_views",
        {_C},
        until=18,
        removed=REMOVED_V18,
    )
    + _rows("exits taps_forward taps_back", {_S}, until=18, removed=REMOVED_V18)
    + _rows("replies", {_S})
    + _rows(
        "comments likes shares total_interactions ig_reels_avg_watch_time "
        "ig_reels_video_view_total_time",
        {_R},
    )
    + _rows("plays", {_R}, until=22, removed=REMOVED_V22)
    + _rows("clips_replays_count ig_reels_aggregated_all_plays_count", {_R}, 18, 22, REMOVED_V22)
    + _rows("total_interactions shares", {_P, _V, _C, _S}, 18)
    + _rows("likes comments", {_P, _V, _C}, 18)
    + _rows("follows profile_visits profile_activity", {_P, _V, _C, _S}, 18)
    + _rows("navigation", {_S}, 18)
    + _rows("views", {_P, _V, _C, _R, _S}, 22)
    + _added("reposts", {_P, _V, _C, _R, _S}, ADDED_2025_12)
    + _added("reels_skip_rate crossposted_views facebook_views", {_R}, ADDED_2025_12)
    + _added("facebook_views", {_P, _V, _C, _S}, ADDED_2026_04)
    + _added("total_likes total_comments", {_P, _V, _C, _R}, ADDED_2026_04)
    + _added("total_views", {_P, _V, _C, _R, _S}, ADDED_2026_04)
    + _added("link_clicks", {_S}, ADDED_2026_06)
)

# Breakdown key -> the metrics that have it. Without `breakdown` every metric replies in the
# `values` shape; with it, `total_value{value, breakdowns}` comes beside `values` [doc].
MEDIA_BREAKDOWNS: dict[str, frozenset[str]] = {
    "action_type": frozenset({"profile_activity"}),
    "story_navigation_action_type": frozenset({"navigation"}),
}


def kind_of(media_type: str, media_product_type: str) -> str | None:
    """PHOTO/VIDEO/CAROUSEL/REEL/STORY, or None for shapes that have no insights (children, AD)."""
    if media_product_type == "STORY":
        return STORY
    if media_product_type == "REELS":
        return REEL if media_type == "VIDEO" else None
    if media_product_type == "FEED":
        return {"IMAGE": PHOTO, "VIDEO": VIDEO, "CAROUSEL_ALBUM": CAROUSEL}.get(media_type)
    return None


def _live(row: MetricRow, version: int, as_of: date | None) -> bool:
    if row.added is not None:
        return as_of is None or as_of >= row.added
    if not row.since <= version < row.until:
        return False
    return as_of is None or row.removed is None or as_of < row.removed


@lru_cache(maxsize=4096)
def _valid(version: int, kind: str, as_of: date | None, new_media: bool) -> frozenset[str]:
    found = {r.metric for r in MEDIA_METRICS if kind in r.kinds and _live(r, version, as_of)}
    cutoff_applies = version >= 21 or (as_of is not None and as_of >= IMPRESSIONS_CUTOFF)
    if new_media and cutoff_applies:
        found.discard("impressions")
    return frozenset(found)


def valid_media_metrics(
    api_version: str,
    media_type: str,
    media_product_type: str,
    *,
    as_of: date | None,
    created: datetime | None,
    login: str = FACEBOOK,
    shared_to_facebook: bool = False,
) -> frozenset[str]:
    """Metrics Meta accepts for this media shape, version, date, creation time and login.

    A version expired on `as_of` answers as the oldest available one; the metrics that need a
    media shared to Facebook are in only with `shared_to_facebook`."""
    version = parse_version(api_version)
    kind = kind_of(media_type, media_product_type)
    if version is None or kind is None:
        return frozenset()
    served = served_version(version, as_of)
    if served is None:
        return frozenset()
    found = for_login(media_metrics_for(served, kind, as_of, created), login)
    return found if shared_to_facebook else found - SHARED_TO_FACEBOOK_ONLY


def for_login(metrics: Iterable[str], login: str) -> frozenset[str]:
    """`metrics` without those another login alone has."""
    return frozenset(m for m in metrics if login in LOGIN_ONLY.get(m, (login,)))


def media_metrics_for(
    version: int, kind: str, as_of: date | None, created: datetime | None
) -> frozenset[str]:
    new_media = created is not None and created.astimezone(UTC).date() >= IMPRESSIONS_CUTOFF
    return _valid(version, kind, as_of, new_media)


@lru_cache(maxsize=512)
def known_media_metrics(version: int, as_of: date | None) -> frozenset[str]:
    """Every media metric the version knows for some kind (else: "must be one of")."""
    return frozenset(r.metric for r in MEDIA_METRICS if _live(r, version, as_of))


@lru_cache(maxsize=512)
def kind_media_metrics(version: int, kind: str, as_of: date | None) -> frozenset[str]:
    """The metric names the version lists for a kind, whatever the media's age or sharing."""
    return frozenset(
        r.metric for r in MEDIA_METRICS if kind in r.kinds and _live(r, version, as_of)
    )


# ---- account insights -------------------------------------------------------------------------


class AccountMetric(NamedTuple):
    metric: str
    since: int
    until: int
    removed: date | None
    periods: frozenset[str]
    # "series": values per day; "total": needs metric_type=total_value; "either": both work;
    # "demographics": lifetime total_value maps with timeframe.
    style: str
    breakdowns: frozenset[str]
    added: date | None = None  # added to every version on this date (under as_of)


def _acct(
    metrics: str,
    periods: str,
    style: str,
    since: int = 0,
    until: int = NO_END,
    removed: date | None = None,
    breakdowns: str = "",
    added: date | None = None,
) -> list[AccountMetric]:
    p, b = frozenset(periods.split()), frozenset(breakdowns.split())
    return [AccountMetric(m, since, until, removed, p, style, b, added) for m in metrics.split()]


ACCOUNT_METRICS: tuple[AccountMetric, ...] = tuple(
    _acct("impressions", "day week days_28", "series", until=22, removed=REMOVED_V22)
    + _acct("reach", "day week days_28", "series", until=18)
    + _acct("reach", "day week days_28", "either", 18, breakdowns="media_product_type follow_type")
    + _acct("follower_count", "day", "series")
    + _acct(
        "profile_views website_clicks email_contacts phone_call_clicks text_message_clicks "
        "get_directions_clicks",
        "day",
        "series",
        until=21,
        removed=REMOVED_V21,
    )
    + _acct(
        "audience_city audience_country audience_gender_age audience_locale",
        "lifetime",
        "map",
        until=18,
        removed=REMOVED_V18,
    )
    + _acct("online_followers", "lifetime", "map")
    + _acct("accounts_engaged", "day", "total", 18)
    + _acct(
        "total_interactions likes comments shares saves replies",
        "day",
        "total",
        18,
        breakdowns="media_product_type",
    )
    + _acct("follows_and_unfollows", "day", "total", 18, breakdowns="follow_type")
    + _acct("profile_links_taps", "day", "total", 18, breakdowns="contact_button_type")
    + _acct("views", "day", "total", 22, breakdowns="follower_type media_product_type")
    + _acct(
        "follower_demographics engaged_audience_demographics reached_audience_demographics",
        "lifetime",
        "demographics",
        18,
        breakdowns="age gender country city",
    )
    + _acct("reposts", "day", "total", added=ADDED_2025_12)
)

# The version in whose release a metric stopped being served: quoted in Meta's removal message.
_REMOVAL_VERSION = {REMOVED_V18: 18, REMOVED_V21: 21, REMOVED_V22: 22}


@lru_cache(maxsize=4096)  # asked for every metric of every account insights call
def account_metric(name: str, version: int, as_of: date | None) -> AccountMetric | None:
    for row in ACCOUNT_METRICS:
        if row.metric != name:
            continue
        if row.added is not None:
            if as_of is None or as_of >= row.added:
                return row
            continue
        live = as_of is None or row.removed is None or as_of < row.removed
        if row.since <= version < row.until and live:
            return row
    return None


def account_removal_version(name: str, version: int) -> int | None:
    """For a metric that existed before `version` (or before as_of) and is gone now: since when."""
    for row in ACCOUNT_METRICS:
        if row.metric == name and row.removed is not None and row.since <= version:
            return _REMOVAL_VERSION[row.removed]
    return None


@lru_cache(maxsize=512)
def known_account_metrics(version: int, as_of: date | None) -> tuple[str, ...]:
    return tuple(
        sorted({r.metric for r in ACCOUNT_METRICS if account_metric(r.metric, version, as_of)})
    )


# The 2024-05-21 change (v20, every version from 2024-08-19) removed four timeframes for these two
# only; they also need a timeframe, while follower_demographics lists all six and needs none [doc].
TIMEFRAME_REQUIRED = frozenset({"engaged_audience_demographics", "reached_audience_demographics"})
ALL_TIMEFRAMES = frozenset(
    {"this_week", "this_month", "last_14_days", "last_30_days", "last_90_days", "prev_month"}
)
TIMEFRAMES_REMOVED = date(2024, 8, 19)


def demographic_timeframes(metric: str, version: int, as_of: date | None) -> frozenset[str]:
    """The timeframes Meta accepts for a demographics metric in a version on `as_of`."""
    if metric not in TIMEFRAME_REQUIRED:
        return ALL_TIMEFRAMES
    if version >= 20 or (as_of is not None and as_of >= TIMEFRAMES_REMOVED):
        return frozenset({"this_week", "this_month"})
    return ALL_TIMEFRAMES


# ---- fields -----------------------------------------------------------------------------------

IG_USER_FIELDS = frozenset(
    [
        "biography",
        "id",
        "ig_id",
        "followers_count",
        "follows_count",
        "media_count",
        "name",
        "profile_picture_url",
        "username",
        "website",
        "has_profile_pic",
        "legacy_instagram_user_id",
        "shopping_product_tag_eligibility",
        "media",
        "stories",
        "business_discovery",
    ]
)
IG_MEDIA_FIELDS = frozenset(
    [
        "alt_text",
        "boost_ads_list",
        "boost_eligibility_info",
        "caption",
        "comments_count",
        "copyright_check_information",
        "id",
        "ig_id",
        "is_comment_enabled",
        "is_shared_to_feed",
        "legacy_instagram_media_id",
        "like_count",
        "media_product_type",
        "media_type",
        "media_url",
        "owner",
        "permalink",
        "shortcode",
        "thumbnail_url",
        "timestamp",
        "username",
        "children",
        "insights",
    ]
)
# IG Media fields Meta added to every version on 2026-04-22, Facebook Login only: field -> the
# media metric whose lifetime value it carries (the simulator's values are one source of truth).
MEDIA_COUNT_FIELDS: dict[str, str] = {
    "reposts_count": "reposts",
    "saved_count": "saved",
    "shares_count": "shares",
    "total_like_count": "total_likes",
    "total_comments_count": "total_comments",
    "total_views_count": "total_views",
}
MEDIA_COUNT_FIELDS_ADDED = ADDED_2026_04


@lru_cache(maxsize=8)
def ig_media_fields(login: str, as_of: date | None) -> frozenset[str]:
    """The IG Media fields with `login` on `as_of` (None: lenient in time, as for metrics)."""
    added = as_of is None or as_of >= MEDIA_COUNT_FIELDS_ADDED
    if login == FACEBOOK and added:
        return IG_MEDIA_FIELDS | MEDIA_COUNT_FIELDS.keys()
    return IG_MEDIA_FIELDS


CHILD_FIELDS = frozenset(
    [
        "alt_text",
        "id",
        "ig_id",
        "media_product_type",
        "media_type",
        "media_url",
        "owner",
        "permalink",
        "shortcode",
        "thumbnail_url",
        "timestamp",
        "username",
    ]
)
PAGE_FIELDS = frozenset(
    [
        "id",
        "name",
        "access_token",
        "category",
        "category_list",
        "tasks",
        "instagram_business_account",
        "connected_instagram_account",
    ]
)
