"""Deterministic metric values: pure functions of (seed, object, metric, period, day).

Values are plausible rather than modelled: a media's reach scales with its account's followers,
other metrics are seeded fractions of reach, and sums (total_interactions) agree with their parts,
so a harvester test can compute any expected number through `World` without a recording.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from typing import TypeVar

from harvester.simulator.entities import SimAccount, SimMedia
from harvester.simulator.ids import mix, name_key, skewed_weights, unit_at, units_then

# Multipliers of reach: value = reach * (lo + (hi - lo) * u).
_MEDIA_FACTORS: dict[str, tuple[float, float]] = {
    "impressions": (1.1, 1.8),
    "views": (1.2, 2.6),
    "plays": (1.3, 3.0),
    "ig_reels_aggregated_all_plays_count": (1.4, 3.2),
    "clips_replays_count": (0.1, 0.5),
    "video_views": (0.5, 1.2),
    "saved": (0.0, 0.05),
    "likes": (0.02, 0.15),
    "comments": (0.0, 0.02),
    "shares": (0.0, 0.03),
    "follows": (0.0, 0.01),
    "profile_visits": (0.0, 0.05),
    "profile_activity": (0.0, 0.03),
    "navigation": (0.5, 1.5),
    "exits": (0.05, 0.2),
    "taps_forward": (0.2, 0.9),
    "taps_back": (0.02, 0.2),
    "replies": (0.0, 0.02),
    "reposts": (0.0, 0.01),
    "crossposted_views": (0.1, 0.8),
    "facebook_views": (0.1, 1.0),
    "link_clicks": (0.0, 0.03),
}
# Metrics that add paid (ad, boost) engagement to an organic one: total >= organic.
_WITH_PAID = {"total_likes": "likes", "total_comments": "comments", "total_views": "views"}
_ALIASES = {
    "carousel_album_engagement": "engagement",
    "carousel_album_impressions": "impressions",
    "carousel_album_reach": "reach",
    "carousel_album_saved": "saved",
    "carousel_album_video_views": "video_views",
}

BREAKDOWN_KEYS: dict[str, tuple[str, ...]] = {
    "profile_activity": ("bio_link_clicked", "call", "direction", "email", "text", "other"),
    "navigation": ("tap_forward", "tap_back", "tap_exit", "swipe_forward"),
}
MEDIA_BREAKDOWN_DIMENSION = {
    "profile_activity": "action_type",
    "navigation": "story_navigation_action_type",
}

K = TypeVar("K")

_REACH = name_key("reach")


def media_reach(seed: int, media: SimMedia, account: SimAccount) -> int:
    u = unit_at(media.head, _REACH)
    if media.trouble == "few_viewers":
        return int(u * 5)
    share = (0.02, 0.12) if media.is_story else (0.05, 0.55)
    return 5 + int(account.followers_count * (share[0] + (share[1] - share[0]) * u))


def media_value(seed: int, media: SimMedia, account: SimAccount, metric: str) -> int | float:
    """The lifetime value of `metric` for `media`, whether or not the API would serve it.

    Counts are ints; `reels_skip_rate` is a percentage with up to two decimals (56.3, 0.37)."""
    metric = _ALIASES.get(metric, metric)
    if metric == "reels_skip_rate":
        u = unit_at(media.head, name_key(metric))
        # Cubed: about a fifth of reels fall under 1 %, as the fractional values Meta shows do.
        return max(0.01, round(90.0 * u**3, 2))
    if metric in _WITH_PAID:
        organic = int(media_value(seed, media, account, _WITH_PAID[metric]))
        u = unit_at(media.head, name_key(metric))
        return organic + int(organic * 0.6 * u)
    reach = media_reach(seed, media, account)
    if metric == "reach":
        return reach
    if metric == "total_interactions":
        if media.is_story:
            return int(media_value(seed, media, account, "replies")) + int(
                media_value(seed, media, account, "shares")
            )
        parts: tuple[str, ...] = ("likes", "comments", "shares", "saved")
        return sum(int(media_value(seed, media, account, p)) for p in parts)
    if metric == "engagement":
        return sum(
            int(media_value(seed, media, account, p)) for p in ("likes", "comments", "saved")
        )
    u = unit_at(media.head, name_key(metric))
    if metric == "ig_reels_avg_watch_time":
        return 1500 + int(u * 28_500)
    if metric == "ig_reels_video_view_total_time":
        avg = int(media_value(seed, media, account, "ig_reels_avg_watch_time"))
        return avg * int(media_value(seed, media, account, "plays"))
    lo, hi = _MEDIA_FACTORS.get(metric, (0.0, 0.1))
    return int(reach * (lo + (hi - lo) * u))


def media_breakdown(seed: int, media_id: str, metric: str, total: int) -> dict[str, int]:
    """Split `total` over the metric's breakdown keys; only non-zero keys appear, as at Meta."""
    keys = BREAKDOWN_KEYS.get(metric)
    if not keys or total <= 0:
        return {}
    return split(total, keys, seed, int(media_id), name_key(metric))


def split(total: int, keys: Sequence[K], *salt: int) -> dict[K, int]:
    """Deterministically divide `total` among `keys` (skewed weights), dropping zero parts."""
    return split_from(total, keys, mix(*salt))


def split_from(total: int, keys: Sequence[K], head: int) -> dict[K, int]:
    """`split(total, keys, *salt)` given `head = mix(*salt)`."""
    return {k: v for k, v in zip(keys, shares(total, len(keys), head), strict=True) if v > 0}


def shares(total: int, count: int, head: int) -> list[int]:
    """`count` skewed parts of `total` drawn under `head`, zeros kept: what `split_from` keeps
    of them, for a caller that builds its own rows from the parts (no dict in between)."""
    weights = skewed_weights(head, count)
    scale = sum(weights)
    parts = [int(total * w / scale) for w in weights]
    parts[weights.index(max(weights))] += total - sum(parts)  # the first biggest
    return parts


# Daily account values, as fractions of followers: value = followers * (lo + (hi - lo) * u).
_ACCOUNT_DAILY: dict[str, tuple[float, float]] = {
    "impressions": (0.2, 0.9),
    "reach": (0.1, 0.4),
    "views": (0.3, 1.2),
    "follower_count": (0.0, 0.004),
    "profile_views": (0.005, 0.03),
    "website_clicks": (0.0, 0.004),
    "email_contacts": (0.0, 0.001),
    "phone_call_clicks": (0.0, 0.001),
    "text_message_clicks": (0.0, 0.001),
    "get_directions_clicks": (0.0, 0.001),
    "accounts_engaged": (0.01, 0.06),
    "total_interactions": (0.02, 0.1),
    "likes": (0.015, 0.08),
    "comments": (0.0, 0.01),
    "shares": (0.0, 0.01),
    "saves": (0.0, 0.01),
    "replies": (0.0, 0.005),
    "follows_and_unfollows": (0.0, 0.005),
    "profile_links_taps": (0.0, 0.006),
    "reposts": (0.0, 0.004),
}
# A week's or 28 days' reach is less than the sum of days: the same people come back.
_PERIOD_SCALE = {"day": 1.0, "week": 4.2, "days_28": 11.0, "lifetime": 1.0}


def account_value(
    seed: int, index: int, followers: int, metric: str, period: str, day: date
) -> int:
    """The value for the period ending at `day`'s 07:00 UTC boundary (Meta's end_time)."""
    return account_values(seed, index, followers, metric, period, (day,))[0]


def account_values(
    seed: int, index: int, followers: int, metric: str, period: str, days: Sequence[date]
) -> list[int]:
    """`account_value` for each of `days`, the metric's draw looked up once for all of them."""
    head, lo, span, scale = _account_draw(seed, index, metric, period)
    return [int(followers * (lo + span * unit_at(head, d.toordinal())) * scale) for d in days]


def account_total(
    seed: int, index: int, followers: int, metric: str, period: str, days: Sequence[date]
) -> int:
    """A `metric_type=total_value` answer over `days`: reach deduplicated (people come back),
    every other metric the sum of its days. A one-day window (most of a harvest's totals: one
    request a day and metric group) is that day's value either way, drawn without a list."""
    if len(days) == 1:
        head, lo, span, scale = _account_draw(seed, index, metric, period)
        return int(followers * (lo + span * unit_at(head, days[0].toordinal())) * scale)
    daily = account_values(seed, index, followers, metric, period, days)
    return deduplicated(daily) if metric == "reach" else sum(daily)


@lru_cache(maxsize=1 << 14)
def _account_draw(
    seed: int, index: int, metric: str, period: str
) -> tuple[int, float, float, float]:
    """What one account's days of one metric share (the mixing head, the value's range and the
    period's scale): a day's value then costs one mixing round."""
    lo, hi = _ACCOUNT_DAILY.get(metric, (0.0, 0.02))
    head = mix(seed, index, name_key(metric), name_key(period))
    return head, lo, hi - lo, _PERIOD_SCALE.get(period, 1.0)


def deduplicated(daily: list[int]) -> int:
    """A window's total of people (reach) from its days: the same people come back, so the total
    is the biggest day plus a share of the others, never the plain sum."""
    if not daily:
        return 0
    top = max(daily)
    return top + int(0.3 * (sum(daily) - top))


def hour_map(seed: int, account: SimAccount, day: date) -> dict[str, int]:
    """online_followers for one day: followers online in each hour, keys "0".."23"."""
    head = mix(seed, account.index, day.toordinal())
    draws = units_then(head, 24, 7)
    bases = _hour_bases(account.followers_count)
    counts = [int(b * (0.85 + 0.3 * u)) for b, u in zip(bases, draws, strict=True)]
    return dict(zip(_HOUR_KEYS, counts, strict=True))


# Each hour's key and daylight share for `hour_map`.
_HOURS = tuple((str(h), 0.25 + 0.55 * (1 - abs(h - 14) / 14)) for h in range(24))
_HOUR_KEYS = tuple(hour for hour, _ in _HOURS)


@lru_cache(maxsize=1 << 12)
def _hour_bases(followers: int) -> tuple[float, ...]:
    """`followers * 0.4 * daylight` for each hour, the same every day of an account (its
    online_followers days are 30 a window): `base * daylight * x` multiplies left to right."""
    base = followers * 0.4
    return tuple(base * daylight for _, daylight in _HOURS)


def segment_counts(
    seed: int, account: SimAccount, salt: int, keys: list[str], total: int
) -> dict[str, int]:
    """Audience sizes for demographic segments, deterministic per (account, metric)."""
    parts = segment_shares(seed, account, salt, len(keys), total)
    return {k: v for k, v in zip(keys, parts, strict=True) if v > 0}


def segment_shares(seed: int, account: SimAccount, salt: int, count: int, total: int) -> list[int]:
    """`segment_counts`' parts in its keys' order, zeros kept, for a caller that builds its own
    rows (demographics sort them and keep the biggest, a dict in between was wasted)."""
    return shares(total, count, mix(seed, account.index, salt, mix(count)))
