"""The simulator's validity tables, row by row against the canonical metric table."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from harvester.simulator.validity import MAX_VERSION, parse_version, valid_media_metrics

KINDS = {
    "PHOTO": ("IMAGE", "FEED"),
    "VIDEO": ("VIDEO", "FEED"),
    "CAROUSEL": ("CAROUSEL_ALBUM", "FEED"),
    "REEL": ("VIDEO", "REELS"),
    "STORY": ("IMAGE", "STORY"),
}
OLD = datetime(2023, 1, 1, tzinfo=UTC)  # created before the impressions cutoff

# (metric, kinds, first valid version, first invalid version or None, all-version removal date)
CANONICAL = [
    ("engagement", "PHOTO VIDEO", 10, 18, date(2023, 12, 11)),
    ("impressions", "PHOTO VIDEO STORY", 10, 22, date(2025, 4, 21)),
    ("impressions", "CAROUSEL", 18, 22, date(2025, 4, 21)),
    ("reach", "PHOTO VIDEO STORY REEL", 10, None, None),
    ("reach", "CAROUSEL", 18, None, None),
    ("saved", "PHOTO VIDEO REEL", 10, None, None),
    ("saved", "CAROUSEL", 18, None, None),
    ("video_views", "VIDEO", 10, 21, date(2025, 1, 8)),
    ("video_views", "CAROUSEL", 18, 21, date(2025, 1, 8)),
    ("carousel_album_engagement", "CAROUSEL", 10, 18, date(2023, 12, 11)),
    ("carousel_album_impressions", "CAROUSEL", 10, 18, date(2023, 12, 11)),
    ("carousel_album_reach", "CAROUSEL", 10, 18, date(2023, 12, 11)),
    ("carousel_album_saved", "CAROUSEL", 10, 18, date(2023, 12, 11)),
    ("carousel_album_video_views", "CAROUSEL", 10, 18, date(2023, 12, 11)),
    ("exits", "STORY", 10, 18, date(2023, 12, 11)),
    ("taps_forward", "STORY", 10, 18, date(2023, 12, 11)),
    ("taps_back", "STORY", 10, 18, date(2023, 12, 11)),
    ("replies", "STORY", 10, None, None),
    ("comments", "REEL", 10, None, None),
    ("likes", "REEL", 10, None, None),
    ("shares", "REEL", 10, None, None),
    ("total_interactions", "REEL", 10, None, None),
    ("ig_reels_avg_watch_time", "REEL", 10, None, None),
    ("ig_reels_video_view_total_time", "REEL", 10, None, None),
    ("plays", "REEL", 10, 22, date(2025, 4, 21)),
    ("clips_replays_count", "REEL", 18, 22, date(2025, 4, 21)),
    ("ig_reels_aggregated_all_plays_count", "REEL", 18, 22, date(2025, 4, 21)),
    ("total_interactions", "PHOTO VIDEO CAROUSEL STORY", 18, None, None),
    ("shares", "PHOTO VIDEO CAROUSEL STORY", 18, None, None),
    ("likes", "PHOTO VIDEO CAROUSEL", 18, None, None),
    ("comments", "PHOTO VIDEO CAROUSEL", 18, None, None),
    ("follows", "PHOTO VIDEO CAROUSEL STORY", 18, None, None),
    ("profile_visits", "PHOTO VIDEO CAROUSEL STORY", 18, None, None),
    ("profile_activity", "PHOTO VIDEO CAROUSEL STORY", 18, None, None),
    ("navigation", "STORY", 18, None, None),
    ("views", "PHOTO VIDEO CAROUSEL REEL STORY", 22, None, None),
]


def valid(
    metric: str,
    kind: str,
    version: int,
    as_of: date | None = None,
    shared: bool = False,
    login: str = "facebook",
) -> bool:
    media_type, product = KINDS[kind]
    found = valid_media_metrics(
        f"v{version}.0",
        media_type,
        product,
        as_of=as_of,
        created=OLD,
        login=login,
        shared_to_facebook=shared,
    )
    return metric in found


@pytest.mark.parametrize(
    ("metric", "kinds", "since", "until", "removed"),
    CANONICAL,
    ids=[f"{r[0]}-{r[1]}" for r in CANONICAL],
)
def test_canonical_row(
    metric: str, kinds: str, since: int, until: int | None, removed: date | None
) -> None:
    for kind in kinds.split():
        assert valid(metric, kind, since)
        if since > 10:
            assert not valid(metric, kind, since - 1)
        last = (until or MAX_VERSION + 1) - 1
        assert valid(metric, kind, last)
        if until is not None and until <= MAX_VERSION:
            assert not valid(metric, kind, until)
        if removed is not None:
            assert valid(metric, kind, since, as_of=date.fromordinal(removed.toordinal() - 1))
            assert not valid(metric, kind, since, as_of=removed)


@pytest.mark.parametrize(
    ("metric", "kind"),
    [
        ("engagement", "REEL"),
        ("saved", "STORY"),
        ("likes", "STORY"),
        ("navigation", "PHOTO"),
        ("follows", "REEL"),
        ("profile_activity", "REEL"),
        ("replies", "PHOTO"),
        ("video_views", "PHOTO"),
        ("reels_skip_rate", "PHOTO"),
        ("crossposted_views", "STORY"),
        ("total_likes", "STORY"),
        ("link_clicks", "REEL"),
    ],
)
def test_metric_never_valid_for_kind(metric: str, kind: str) -> None:
    assert not any(valid(metric, kind, v, shared=True) for v in range(10, MAX_VERSION + 1))


def test_children_and_unknown_shapes_have_no_metrics() -> None:
    for version in ("v17.0", "v25.0"):
        assert valid_media_metrics(version, "IMAGE", "AD", as_of=None, created=None) == frozenset()
        assert valid_media_metrics(version, "IMAGE", "REELS", as_of=None, created=None) == set()


def test_impressions_rule_for_new_media() -> None:
    new = datetime(2024, 7, 2, tzinfo=UTC)
    older = datetime(2024, 7, 1, 23, 59, tzinfo=UTC)

    def has(version: str, created: datetime, as_of: date | None = None) -> bool:
        found = valid_media_metrics(version, "IMAGE", "FEED", as_of=as_of, created=created)
        return "impressions" in found

    assert has("v20.0", new)
    assert not has("v21.0", new)
    assert has("v21.0", older)
    assert not has("v17.0", new, as_of=date(2024, 7, 2))
    assert has("v17.0", older, as_of=date(2024, 7, 2))
    assert has("v17.0", new, as_of=date(2024, 7, 1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v10.0", 10),
        ("v25.0", 25),
        ("v27.0", 27),
        ("v9.0", None),
        ("v28.0", None),
        ("v99.0", None),
        ("v25.1", None),
        ("25.0", None),
        ("vx.0", None),
    ],
)
def test_parse_version(text: str, expected: int | None) -> None:
    assert parse_version(text) == expected


# The 2025-2026 additions: (metric, kinds, the date Meta added it to every version, Facebook
# Login only, needs a media shared to Facebook).
NEW_MEDIA = [
    ("reposts", "PHOTO VIDEO CAROUSEL REEL STORY", date(2025, 12, 3), False, False),
    ("reels_skip_rate", "REEL", date(2025, 12, 3), False, False),
    ("crossposted_views", "REEL", date(2025, 12, 3), False, True),
    ("facebook_views", "REEL", date(2025, 12, 3), False, True),
    ("facebook_views", "PHOTO VIDEO CAROUSEL STORY", date(2026, 4, 22), False, True),
    ("total_likes", "PHOTO VIDEO CAROUSEL REEL", date(2026, 4, 22), True, False),
    ("total_comments", "PHOTO VIDEO CAROUSEL REEL", date(2026, 4, 22), True, False),
    ("total_views", "PHOTO VIDEO CAROUSEL REEL STORY", date(2026, 4, 22), True, False),
    ("link_clicks", "STORY", date(2026, 6, 22), True, False),
]


@pytest.mark.parametrize(
    ("metric", "kinds", "added", "facebook_only", "needs_sharing"),
    NEW_MEDIA,
    ids=[f"{r[0]}-{r[1]}" for r in NEW_MEDIA],
)
def test_new_media_metric_rows(
    metric: str, kinds: str, added: date, facebook_only: bool, needs_sharing: bool
) -> None:
    day_before = added - timedelta(days=1)
    for kind in kinds.split():
        # Published for all versions: every live version has it from that day (v21 and v24 here).
        for version in (21, 24):
            assert valid(metric, kind, version, as_of=added, shared=True)
            assert not valid(metric, kind, version, as_of=day_before, shared=True)
            assert valid(metric, kind, version, shared=True)  # no clock: lenient in time
        assert valid(metric, kind, 27, shared=True, login="instagram") is not facebook_only
        assert valid(metric, kind, 27) is not needs_sharing
    every = {k for m, ks, *_ in NEW_MEDIA if m == metric for k in ks.split()}
    for kind in set(KINDS) - every:
        assert not any(valid(metric, kind, v, shared=True) for v in (10, 21, 27))
