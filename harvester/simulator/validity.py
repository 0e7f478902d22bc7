"""The simulator's own strictness tables: metrics, fields, periods and breakdowns per version.

Kept apart from the harvester's catalogue on purpose (the simulator never imports it), so a wrong
row on one side shows up as a failing test instead of a silent agreement. Version ranges are
[from, until); `removed` is Meta's all-version removal date, applied only under `as_of`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from typing import NamedTuple

MIN_VERSION = 10
MAX_VERSION = 25
NO_END = 10_000

PHOTO, VIDEO, CAROUSEL, REEL, STORY = "PHOTO", "VIDEO", "CAROUSEL", "REEL", "STORY"

REMOVED_V18 = date(2023, 12, 11)
REMOVED_V21 = date(2025, 1, 8)
REMOVED_V22 = date(2025, 4, 21)
# From v21 (and under as_of on/after this date in every version) media created on or after it
# reject `impressions`.
IMPRESSIONS_CUTOFF = date(2024, 7, 2)


class MetricRow(NamedTuple):
    metric: str
    kinds: frozenset[str]
    since: int
    until: int
    removed: date | None


def _rows(
    metrics: str, kinds: set[str], since: int = 0, until: int = NO_END, removed: date | None = None
) -> list[MetricRow]:
    return [MetricRow(m, frozenset(kinds), since, until, removed) for m in metrics.split()]


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
    + _rows("reposts", {_P, _V, _C, _R}, 25)
)

# From v18 these reply `{"total_value": {"value": N}}` instead of `{"values": [{"value": N}]}`.
TOTAL_VALUE_METRICS = frozenset(
    {"total_interactions", "profile_activity", "navigation", "views", "reposts"}
)
MEDIA_BREAKDOWNS: dict[str, frozenset[str]] = {
    "action_type": frozenset({"profile_activity"}),
    "story_navigation_action_type": frozenset({"navigation"}),
}


def parse_version(text: str) -> int | None:
    """The major number of "v25.0", or None when it is not a version the simulator serves."""
    if len(text) < 4 or text[0] != "v" or not text.endswith(".0"):
        return None
    major = text[1:-2]
    if not major.isdigit():
        return None
    n = int(major)
    return n if MIN_VERSION <= n <= MAX_VERSION else None


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
) -> frozenset[str]:
    """Metrics Meta accepts for this media shape, version, removal date and creation time."""
    version = parse_version(api_version)
    kind = kind_of(media_type, media_product_type)
    if version is None or kind is None:
        return frozenset()
    return media_metrics_for(version, kind, as_of, created)


def media_metrics_for(
    version: int, kind: str, as_of: date | None, created: datetime | None
) -> frozenset[str]:
    new_media = created is not None and created.astimezone(UTC).date() >= IMPRESSIONS_CUTOFF
    return _valid(version, kind, as_of, new_media)


@lru_cache(maxsize=512)
def known_media_metrics(version: int, as_of: date | None) -> tuple[str, ...]:
    """Every media metric the version knows for some kind: the list in "must be one of" errors."""
    return tuple(sorted({r.metric for r in MEDIA_METRICS if _live(r, version, as_of)}))


def reply_shape(metric: str, version: int) -> str:
    """ "total_value" or "values": the body shape of one metric's entry."""
    return "total_value" if version >= 18 and metric in TOTAL_VALUE_METRICS else "values"


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


def _acct(
    metrics: str,
    periods: str,
    style: str,
    since: int = 0,
    until: int = NO_END,
    removed: date | None = None,
    breakdowns: str = "",
) -> list[AccountMetric]:
    p, b = frozenset(periods.split()), frozenset(breakdowns.split())
    return [AccountMetric(m, since, until, removed, p, style, b) for m in metrics.split()]


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
)

# The version in whose release a metric stopped being served: quoted in Meta's removal message.
_REMOVAL_VERSION = {REMOVED_V18: 18, REMOVED_V21: 21, REMOVED_V22: 22}


def account_metric(name: str, version: int, as_of: date | None) -> AccountMetric | None:
    for row in ACCOUNT_METRICS:
        live = as_of is None or row.removed is None or as_of < row.removed
        if row.metric == name and row.since <= version < row.until and live:
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


def demographic_timeframes(version: int) -> frozenset[str]:
    base = {"this_week", "this_month"}
    if version < 20:
        base |= {"last_14_days", "last_30_days", "last_90_days", "prev_month"}
    return frozenset(base)


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
