"""The simulated Instagram world: accounts, media, children and stories, lazily from a seed.

Nothing per media is stored: every attribute is a pure function of (seed, account, index), and IDs
encode their indexes (see `ids`), so a world of 1,000 accounts x 1,000 media starts instantly and
costs almost no memory. Tests of the harvester call the same functions to compute expectations.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from harvester.simulator import ids, values
from harvester.simulator.competitors import Competitors
from harvester.simulator.entities import SimAccount, SimMedia, Trouble
from harvester.simulator.ids import mix, mix_on, name_key, unit

if TYPE_CHECKING:
    from harvester.simulator.settings import SimulatorSettings

YEAR_SECONDS = 365 * 86_400
HISTORY_SECONDS = 3 * YEAR_SECONDS
STORY_LIFETIME_SECONDS = 86_400
PRE_CONVERSION_SHARE = 0.03
DELETED_PER_MILLE = 20
NO_DATA_PER_MILLE = 20
FEW_VIEWERS_PERCENT = 15
# Share of media (stories included) their owner also shared to Facebook: only those have
# crossposted_views and facebook_views.
SHARED_TO_FACEBOOK_PERCENT = 30
# Share of FEED videos posted before LEGACY_BEFORE that refuse total_interactions/likes/comments
# (only with `legacy_video_refusals`).
LEGACY_VIDEO_PERCENT = 20
LEGACY_BEFORE = datetime(2024, 1, 1, tzinfo=UTC)
# Built media the world keeps: a harvest's working set (16 accounts' listed pages in flight,
# children included), not a whole world, so a second harvest of the same media, as benchmarks
# run them one after another, finds them built no more than the first did.
_BUILT_KEPT = 8_192

# Account insights come back for about two years; follower_count and online_followers only for
# the last 30 days [doc, limitations].
ACCOUNT_RETENTION_DAYS = 730
SHORT_RETENTION_DAYS = {"follower_count": 30, "online_followers": 30}

_KIND = name_key("kind")
_CHILDREN = name_key("children")
_TROUBLE = name_key("trouble")
_STORIES = name_key("stories")
_TS = name_key("timestamp")
_FOLLOWERS = name_key("followers")
_CAPTION = name_key("caption")
_FACEBOOK = name_key("shared_to_facebook")
_LEGACY = name_key("legacy_video")
_LIKES_HIDDEN = name_key("likes_hidden")
_URL_WITHHELD = name_key("media_url_withheld")
_COMMENTS_OFF = name_key("comments_disabled")
_PROFILE = name_key("profile")
# Media whose owner hides the like count (`like_count` absent), videos whose `media_url` Meta
# withholds (copyright-flagged), media with comments turned off, in percent; and accounts
# without a biography or a website (the field absent from their IG User node).
LIKES_HIDDEN_PERCENT = 10
MEDIA_URL_WITHHELD_PERCENT = 20
COMMENTS_DISABLED_PERCENT = 8
NO_BIOGRAPHY_PERCENT = 25
NO_WEBSITE_PERCENT = 35


class World:
    """A deterministic population of IG business accounts; all reads are O(1) or O(log n)."""

    def __init__(
        self,
        seed: int,
        accounts: int,
        media_per_account: int,
        now: datetime | None = None,
        troubles: bool = True,
        legacy_video_refusals: bool = False,
        shared_to_facebook_percent: int = SHARED_TO_FACEBOOK_PERCENT,
        instagram_accounts: int = 0,
        competitors: int = 0,
    ) -> None:
        if not 1 <= accounts <= ids.MAX_ACCOUNTS:
            raise ValueError(f"accounts must be in 1..{ids.MAX_ACCOUNTS}")
        if not 0 <= media_per_account <= ids.MAX_MEDIA:
            raise ValueError(f"media_per_account must be in 0..{ids.MAX_MEDIA}")
        self.seed = seed
        self.media_per_account = media_per_account
        self.troubles = troubles
        self.legacy_video_refusals = legacy_video_refusals
        if not 0 <= shared_to_facebook_percent <= 100:
            raise ValueError("shared_to_facebook_percent must be in 0..100")
        self.shared_to_facebook_percent = shared_to_facebook_percent
        if not 0 <= instagram_accounts <= accounts:
            raise ValueError("instagram_accounts must be in 0..accounts")
        self.instagram_accounts = instagram_accounts
        anchor = now if now is not None else datetime.now(UTC)
        if anchor.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.now = anchor.astimezone(UTC).replace(microsecond=0)
        self.now_ts = int(self.now.timestamp())
        # Seconds between consecutive media of one account: media spread over three years.
        self._slot = HISTORY_SECONDS / max(media_per_account, 1)
        self.user_token = ids.token_for(seed, "user", 0)
        self.orphan_page_id = ids.page_id(seed, accounts)
        self.orphan_page_token = ids.token_for(seed, "page", accounts)
        self._accounts = [self._make_account(a, accounts) for a in range(accounts)]
        self._by_id = {acc.id: acc for acc in self._accounts}
        # A media is built from its key alone, and the same media is asked for several times in
        # a short while (listed, then its insights ops, its children's fields): a bounded cache
        # of the recent ones spares the simulator's CPU, which bounds the benchmarks at latency.
        self._build = functools.lru_cache(maxsize=_BUILT_KEPT)(self._build_media)
        # Other professional accounts, seen only through business discovery.
        self.competitors = Competitors(seed, competitors, self.now_ts)
        # Token troubles for preflight (served by `tokens`), never on account 0: the last account's
        # token is expired, the one before lacks instagram_manage_insights (only debug_token and
        # me/permissions say so), the one before that expires in three days.
        planted = troubles and accounts >= 3
        self.permission_missing_account = self._accounts[-2] if planted else None
        self.expiring_token_account = self._accounts[-3] if planted and accounts >= 4 else None

    @classmethod
    def from_settings(cls, settings: SimulatorSettings) -> World:
        """The world a simulator started with `settings` serves (same seed, size, clock)."""
        return cls(
            settings.seed,
            settings.accounts,
            settings.media_per_account,
            settings.now,
            settings.troubles,
            settings.legacy_video_refusals,
            settings.shared_to_facebook_percent,
            settings.instagram_accounts,
            settings.competitors,
        )

    # -- accounts ---------------------------------------------------------------------------

    def _make_account(self, a: int, total: int) -> SimAccount:
        seed = self.seed
        followers = int(80 * (10 ** (unit(seed, a, _FOLLOWERS) * 3.5)))
        pre = max(1, round(self.media_per_account * PRE_CONVERSION_SHARE))
        if self.troubles and self.media_per_account >= 2:
            first_pre = self.media_per_account - pre
            converted = self.media_timestamp_ts(a, first_pre) + 1
        else:
            converted = self.now_ts - HISTORY_SECONDS - YEAR_SECONDS
        instagram = a < self.instagram_accounts
        return SimAccount(
            index=a,
            id=ids.account_id(seed, a),
            token=ids.token_for(seed, "account", a, "IGAA" if instagram else "EAAG"),
            page_id=ids.page_id(seed, a),
            username=f"sim_account_{a}",
            name=f"Simulated Business {a}",
            followers_count=followers,
            follows_count=int(unit(seed, a, _FOLLOWERS, 1) * 900),
            token_expired=self.troubles and total >= 2 and a == total - 1,
            converted_at=datetime.fromtimestamp(converted, UTC),
            login="instagram" if instagram else "facebook",
        )

    @property
    def accounts(self) -> Sequence[SimAccount]:
        return self._accounts

    def account(self, ig_id: str) -> SimAccount | None:
        return self._by_id.get(ig_id)

    @property
    def expired_token_account(self) -> SimAccount | None:
        return next((acc for acc in self._accounts if acc.token_expired), None)

    # -- media ------------------------------------------------------------------------------

    def media_timestamp_ts(self, a: int, m: int) -> int:
        """Unix time of media `m` of account `a`; strictly decreasing in m (newest first)."""
        jitter = 0.05 + 0.9 * unit(self.seed, a, m, _TS)
        return self.now_ts - int((m + jitter) * self._slot)

    def _kind(self, a: int, m: int) -> tuple[str, str]:
        r = mix(self.seed, a, m, _KIND) % 100
        if r < 40:
            return "IMAGE", "FEED"
        if r < 52:
            return "VIDEO", "FEED"
        if r < 77:
            return "CAROUSEL_ALBUM", "FEED"
        return "VIDEO", "REELS"

    def _child_count(self, a: int, m: int) -> int:
        return 2 + mix(self.seed, a, m, _CHILDREN) % 9

    def _media_trouble(self, a: int, m: int) -> Trouble | None:
        if not self.troubles:
            return None
        acc = self._accounts[a]
        if self.media_timestamp_ts(a, m) < acc.converted_at.timestamp():
            return "pre_conversion"
        if a == 0 and self.media_per_account > 4:
            # Planted on the first page of the first account so small test worlds always have them.
            if m == 1:
                return "deleted"
            if m == 2:
                return "no_data"
        r = mix(self.seed, a, m, _TROUBLE) % 1000
        if r < DELETED_PER_MILLE:
            return "deleted"
        if r < DELETED_PER_MILLE + NO_DATA_PER_MILLE:
            return "no_data"
        return None

    def _story_count(self, a: int) -> int:
        return 2 + mix(self.seed, a, _STORIES) % 3

    def _story_trouble(self, a: int, s: int, count: int) -> Trouble | None:
        if not self.troubles:
            return None
        if a == 0 and s == count - 1:
            return "few_viewers"
        if mix(self.seed, a, s, _STORIES, _TROUBLE) % 100 < FEW_VIEWERS_PERCENT:
            return "few_viewers"
        return None

    def _build_media(self, a: int, m: int, slot: int) -> SimMedia | None:
        seed = self.seed
        acc = self._accounts[a]
        mid = ids.media_id(seed, a, m, slot)
        sc = ids.shortcode(seed, a, m, slot)
        head = mix(seed, a, m, slot)
        if slot == ids.SLOT_STORY:
            count = self._story_count(a)
            if m >= count:
                return None
            ts = self.now_ts - int((m + 0.2 + 0.6 * unit(seed, a, m, _TS, 1)) * 80_000 / count)
            mtype = "IMAGE" if mix(seed, a, m, _KIND, 1) % 2 else "VIDEO"
            ig_id = 2_600_000_000_000_000_000 + head % 10**17
            return SimMedia(
                mid, acc.id, mtype, "STORY", datetime.fromtimestamp(ts, UTC),
                f"https://instagram.com/stories/{acc.username}/{ig_id}", None, (),
                self._story_trouble(a, m, count), a, m, slot, sc, head,
            )  # fmt: skip
        if m >= self.media_per_account:
            return None
        ts = self.media_timestamp_ts(a, m)
        mtype, ptype = self._kind(a, m)
        when = datetime.fromtimestamp(ts, UTC)
        if slot == ids.SLOT_MEDIA:
            children: tuple[str, ...] = ()
            if mtype == "CAROUSEL_ALBUM":
                n = self._child_count(a, m)
                children = tuple(ids.media_id(seed, a, m, c) for c in range(1, n + 1))
            kind = "reel" if ptype == "REELS" else "p"
            return SimMedia(
                mid, acc.id, mtype, ptype, when, f"https://www.instagram.com/{kind}/{sc}/",
                None, children, self._media_trouble(a, m), a, m, slot, sc, head,
            )  # fmt: skip
        if mtype != "CAROUSEL_ALBUM" or slot > self._child_count(a, m):
            return None
        ctype = "VIDEO" if mix(seed, a, m, slot, _KIND) % 10 < 3 else "IMAGE"
        parent = ids.media_id(seed, a, m, ids.SLOT_MEDIA)
        return SimMedia(
            mid, acc.id, ctype, "FEED", when, f"https://www.instagram.com/p/{sc}/",
            parent, (), None, a, m, slot, sc, head,
        )  # fmt: skip

    def media(self, media_id: str) -> SimMedia | None:
        """Any media by id: top-level media, carousel children and live stories."""
        key = ids.decode_media(self.seed, media_id)
        if key is None or key.account >= len(self._accounts):
            return None
        if key.slot > ids.SLOT_CHILD_MAX and key.slot != ids.SLOT_STORY:
            return None
        return self._build(key.account, key.position, key.slot)

    def media_at(self, a: int, m: int) -> SimMedia:
        built = self._build(a, m, ids.SLOT_MEDIA)
        assert built is not None
        return built

    def iter_media(self, account_id: str) -> Iterator[SimMedia]:
        """What /media lists for the account, newest first (no stories, no children)."""
        acc = self.account(account_id)
        if acc is None:
            return
        for m in range(self.media_per_account):
            yield self.media_at(acc.index, m)

    def media_count(self, account_id: str) -> int:
        return self.media_per_account if self.account(account_id) else 0

    def index_range(self, a: int, since: int | None, until: int | None) -> tuple[int, int]:
        """Media indexes [lo, hi) whose timestamps fall in [since, until], found by bisection."""
        n = self.media_per_account
        keys = _DescendingTimes(self, a)
        lo = 0 if until is None else bisect.bisect_left(keys, -until)
        hi = n if since is None else bisect.bisect_right(keys, -since)
        return lo, max(lo, hi)

    def stories(self, account_id: str) -> list[SimMedia]:
        """Live stories (posted within 24 h of `now`), newest first."""
        acc = self.account(account_id)
        if acc is None:
            return []
        out = []
        for s in range(self._story_count(acc.index)):
            story = self._build(acc.index, s, ids.SLOT_STORY)
            if story is not None and self.now_ts - story.timestamp.timestamp() < 86_400:
                out.append(story)
        return out

    def children(self, album_id: str) -> list[SimMedia]:
        album = self.media(album_id)
        if album is None:
            return []
        found = (self.media(cid) for cid in album.children_ids)
        return [child for child in found if child is not None]

    def shared_to_facebook(self, media: SimMedia) -> bool:
        """Whether the owner also shared this media to Facebook (`shared_to_facebook_percent`
        of media, 30 by default; never a child)."""
        if media.is_child:
            return False
        return mix_on(media.head, _FACEBOOK) % 100 < self.shared_to_facebook_percent

    def legacy_video(self, media: SimMedia) -> bool:
        """Whether this is a legacy FEED video that refuses total_interactions/likes/comments
        (always False unless the world plants them: `legacy_video_refusals`)."""
        if not self.legacy_video_refusals or media.is_child:
            return False
        if (media.media_type, media.media_product_type) != ("VIDEO", "FEED"):
            return False
        if media.timestamp >= LEGACY_BEFORE:
            return False
        return (
            mix(self.seed, media.account_index, media.index, _LEGACY) % 100 < LEGACY_VIDEO_PERCENT
        )

    def caption(self, media: SimMedia) -> str:
        return f"Simulated post {media.index} #{mix(self.seed, media.account_index, _CAPTION) % 97}"

    def _percent(self, media: SimMedia, key: int) -> int:
        return mix_on(media.head, key) % 100

    def likes_hidden(self, media: SimMedia) -> bool:
        """Whether the owner hides this media's like count: `like_count` is then absent."""
        return not media.is_child and self._percent(media, _LIKES_HIDDEN) < LIKES_HIDDEN_PERCENT

    def media_url_withheld(self, media: SimMedia) -> bool:
        """Whether Meta withholds this video's `media_url` (as for copyright-flagged video)."""
        return (
            media.media_type == "VIDEO"
            and self._percent(media, _URL_WITHHELD) < MEDIA_URL_WITHHELD_PERCENT
        )

    def media_url(self, media: SimMedia) -> str | None:
        if self.media_url_withheld(media):
            return None
        ext = "mp4" if media.media_type == "VIDEO" else "jpg"
        return f"https://scontent.cdninstagram.com/v/t51.29350-15/{media.id}_n.{ext}"

    def thumbnail_url(self, media: SimMedia) -> str | None:
        """A video's cover image (Meta serves `thumbnail_url` on video only)."""
        if media.media_type != "VIDEO":
            return None
        return f"https://scontent.cdninstagram.com/v/t51.29350-15/{media.id}_thumb.jpg"

    def comments_enabled(self, media: SimMedia) -> bool:
        return self._percent(media, _COMMENTS_OFF) >= COMMENTS_DISABLED_PERCENT

    def biography(self, acc: SimAccount) -> str | None:
        if mix(self.seed, acc.index, _PROFILE, 1) % 100 < NO_BIOGRAPHY_PERCENT:
            return None
        return f"Simulated business account #{acc.index}."

    def website(self, acc: SimAccount) -> str | None:
        if mix(self.seed, acc.index, _PROFILE, 2) % 100 < NO_WEBSITE_PERCENT:
            return None
        return f"https://example.com/{acc.username}"

    # -- metric values (delegated to `values`, kept here as the public surface) -------------

    def media_metric_value(self, media_id: str, metric: str) -> int | float:
        media = self.media(media_id)
        if media is None:
            raise KeyError(media_id)
        return self.value_of(media, metric)

    def value_of(self, media: SimMedia, metric: str) -> int | float:
        """`media_metric_value` for an already resolved media (the hot path of insights)."""
        return values.media_value(self.seed, media, self._accounts[media.account_index], metric)

    def media_metric_breakdown(self, media_id: str, metric: str) -> dict[str, int]:
        total = int(self.media_metric_value(media_id, metric))
        return values.media_breakdown(self.seed, media_id, metric, total)

    def account_metric_value(
        self, account_id: str, metric: str, period: str, end_time_day: date
    ) -> int:
        acc = self.account(account_id)
        if acc is None:
            raise KeyError(account_id)
        return values.account_value(
            self.seed, acc.index, acc.followers_count, metric, period, end_time_day
        )

    def account_total_value(
        self, acc: SimAccount, metric: str, days: Sequence[date], period: str = "day"
    ) -> int:
        """A `metric_type=total_value` answer over `days` (end_time days): reach deduplicated
        (people come back), every other metric the sum of its days."""
        return values.account_total(self.seed, acc.index, acc.followers_count, metric, period, days)

    def account_data_from(self, metric: str) -> int:
        """The oldest Unix time an account metric's end_time may have: older days answer nothing."""
        days = SHORT_RETENTION_DAYS.get(metric, ACCOUNT_RETENTION_DAYS)
        return self.now_ts - days * 86_400

    def day_floor(self, when: datetime) -> date:
        return (when - timedelta(hours=7)).date()


class _DescendingTimes(Sequence[int]):
    """Negated timestamps of one account's media: ascending, so `bisect` can search them lazily."""

    def __init__(self, world: World, a: int) -> None:
        self._world = world
        self._a = a

    def __len__(self) -> int:
        return self._world.media_per_account

    def __getitem__(self, m: int) -> int:  # type: ignore[override]
        return -self._world.media_timestamp_ts(self._a, m)
