"""Media insights (`/{media-id}/insights` and the `insights.metric(...)` field expansion).

Validation runs before any value is computed and one bad metric fails the whole request, as at
Meta: there is no partial reply. Troubles planted in the world (deleted, pre-conversion, few
viewers, no data) answer with the exact envelopes Meta uses for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from harvester.simulator import replies, validity
from harvester.simulator.entities import SimMedia
from harvester.simulator.values import BREAKDOWN_KEYS, MEDIA_BREAKDOWN_DIMENSION
from harvester.simulator.world import World

TITLES: dict[str, tuple[str, str]] = {
    "impressions": ("Impressions", "Total number of times the media object has been seen"),
    "reach": ("Reach", "Total number of unique accounts that have seen the media object"),
    "saved": ("Saved", "Total number of unique accounts that have saved the media object"),
    "engagement": ("Engagement", "Total number of likes and comments on the media object"),
    "video_views": ("Video Views", "Total number of times the video has been seen"),
    "likes": ("Likes", "The number of likes on the media object"),
    "comments": ("Comments", "The number of comments on the media object"),
    "shares": ("Shares", "The number of shares of the media object"),
    "total_interactions": ("Interactions", "The number of likes, saves, comments and shares"),
    "views": ("Views", "The number of times the media was played or displayed"),
    "profile_activity": ("Profile activity", "The sum of all profile actions people take"),
    "profile_visits": ("Profile visits", "The number of times the profile was visited"),
    "follows": ("Follows", "The number of accounts that started following"),
    "navigation": ("Navigation", "The number of actions taken from the story"),
    "replies": ("Replies", "The number of replies to the story"),
    "plays": ("Plays", "The number of times the reel started to play"),
    "reposts": ("Reposts", "The number of times the media was reposted"),
    "reels_skip_rate": ("Skip rate", "The percentage of views that skipped the reel early"),
    "crossposted_views": ("Crossposted views", "Views of the reel on Instagram and Facebook"),
    "facebook_views": ("Facebook views", "Views of the media on Facebook"),
    "total_likes": ("Total likes", "Likes on the media, from ads and boosts included"),
    "total_comments": ("Total comments", "Comments on the media, from ads and boosts included"),
    "total_views": ("Total views", "Views of the media, from ads and boosts included"),
    "link_clicks": ("Link clicks", "The number of taps on the story's link sticker"),
}


def _title(metric: str) -> tuple[str, str]:
    found = TITLES.get(metric)
    if found is not None:
        return found
    words = metric.replace("_", " ")
    return words.capitalize(), f"The {words} of the media object"


def split_metrics(text: str | None) -> list[str]:
    if text is None or not text.strip():
        raise replies.bad_param("The parameter metric is required")
    return [m.strip() for m in text.split(",")]


def extras_by_kind(extra: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    """`SimulatorSettings.extra_metrics` as kind -> names (FEED and REELS spread to their kinds)."""
    out: dict[str, set[str]] = {kind: set() for kind in validity.KINDS}
    for key, names in extra.items():
        for kind in validity.KIND_GROUPS.get(key.upper(), ()):
            out[kind].update(names)
    return {kind: frozenset(names) for kind, names in out.items()}


class MediaInsights:
    """Serves media insights for one world under one default version and `as_of` date."""

    def __init__(
        self,
        world: World,
        as_of: date | None,
        login: str = validity.FACEBOOK,
        extra: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.world = world
        self.as_of = as_of
        self.login = login
        self.extra = extras_by_kind(extra or {})
        # Per (version, kind): the hot path asks these on every call.
        self._listed: dict[tuple[int, str], frozenset[str]] = {}
        self._known: dict[int, frozenset[str]] = {}

    def listed(self, version: int, kind: str) -> frozenset[str]:
        """The names Meta lists for a kind in "must be one of": what it accepts for some media of
        the kind (conditional metrics included), under this login, plus the world's extras."""
        found = self._listed.get((version, kind))
        if found is None:
            names = validity.kind_media_metrics(version, kind, self.as_of)
            found = validity.for_login(names, self.login) | self.extra[kind]
            self._listed[(version, kind)] = found
        return found

    def known(self, version: int) -> frozenset[str]:
        """Every media metric name the version knows under this login, for any kind."""
        found = self._known.get(version)
        if found is None:
            names = validity.known_media_metrics(version, self.as_of)
            found = self._known[version] = validity.for_login(names, self.login)
        return found

    def validate(
        self, media: SimMedia, version: int, metrics: list[str], breakdown: str | None
    ) -> None:
        """Raise the GraphError Meta returns for this metric list, if any."""
        if media.is_child:
            raise replies.carousel_child_insights()
        kind = validity.kind_of(media.media_type, media.media_product_type)
        listed = frozenset() if kind is None else self.listed(version, kind)
        known = self.known(version)
        valid = (
            frozenset()
            if kind is None
            else validity.media_metrics_for(version, kind, self.as_of, media.timestamp)
            | self.extra[kind]
        )
        shared = self.world.shared_to_facebook(media)
        legacy = self.world.legacy_video(media)
        for i, metric in enumerate(metrics):
            if metric not in listed and metric not in known:
                raise replies.metric_not_one_of(i, sorted(listed))
            if metric not in valid:
                raise replies.unsupported_metric(metric)
            if metric in validity.SHARED_TO_FACEBOOK_ONLY and not shared:
                raise replies.not_shared_to_facebook(metric)
            if legacy and metric in validity.LEGACY_VIDEO_REFUSED:
                raise replies.incompatible_metric(metric)
        if breakdown is not None:
            for i, key in enumerate(breakdown.split(",")):
                supported = validity.MEDIA_BREAKDOWNS.get(key.strip())
                if supported is None:
                    choices = ", ".join(sorted(validity.MEDIA_BREAKDOWNS))
                    raise replies.bad_param(
                        f"breakdown[{i}] must be one of the following values: {choices}"
                    )
                if any(metric not in supported for metric in metrics):
                    # What Meta answers a breakdown on a metric without it [doc: notes].
                    raise replies.unknown_error()

    def reply(
        self,
        media: SimMedia,
        version: int,
        metrics: list[str],
        period: str | None = None,
        breakdown: str | None = None,
    ) -> dict[str, Any]:
        """The body of `/{media-id}/insights`, or the GraphError Meta would send instead."""
        if media.trouble == "deleted":
            raise replies.insights_object_missing(media.id)
        if period is not None and period != "lifetime":
            raise replies.bad_param(
                f"Invalid period '{period}': media insights only support the lifetime period"
            )
        self.validate(media, version, metrics, breakdown)
        if media.trouble == "pre_conversion":
            raise replies.pre_conversion()
        if media.trouble == "few_viewers":
            raise replies.few_viewers()
        if media.trouble == "no_data":
            return {"data": []}
        seen: set[str] = set()
        data = []
        for metric in metrics:
            if metric not in seen:
                seen.add(metric)
                data.append(self._entry(media, metric, breakdown is not None))
        return {"data": data}

    def _entry(self, media: SimMedia, metric: str, with_breakdown: bool) -> dict[str, Any]:
        """Every metric replies in the `values` shape; a breakdown request adds `total_value`
        with the breakdowns beside it (the recorded profile_activity reply has both)."""
        value = self.world.value_of(media, metric)
        title, description = _title(metric)
        entry: dict[str, Any] = {
            "name": metric,
            "period": "lifetime",
            "values": [{"value": value}],
            "title": title,
            "description": description,
        }
        if with_breakdown and metric in BREAKDOWN_KEYS:
            parts = self.world.media_metric_breakdown(media.id, metric)
            entry["total_value"] = {
                "value": value,
                "breakdowns": [
                    {
                        "dimension_keys": [MEDIA_BREAKDOWN_DIMENSION[metric]],
                        "results": [
                            {"dimension_values": [k], "value": v} for k, v in parts.items()
                        ],
                    }
                ],
            }
        entry["id"] = f"{media.id}/insights/{metric}/lifetime"
        return entry
