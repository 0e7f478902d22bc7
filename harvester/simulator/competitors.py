"""Competitor accounts: other professional accounts, seen only through business discovery.

Like the rest of the world, a pure function of (seed, index): a competitor's profile and every
one of its media are computed when asked, never stored. Their ids come from the same codecs as
the owned ones, in ranges the owned world never uses (an account index past `ids.MAX_ACCOUNTS`,
a media slot of its own), so no competitor id ever reads as an owned account's node or media:
the only way to see a competitor is `business_discovery` on an owned account.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from harvester.simulator import ids
from harvester.simulator.ids import mix, name_key, unit

# The account-id index of competitor 0: past every owned account, so `decode_account` (and so
# the router) never resolves a competitor's id to a readable node.
INDEX_BASE = ids.MAX_ACCOUNTS + 1
# The media-id slot of competitors' media: neither a top-level media, a child nor a story.
MEDIA_SLOT = 60
MAX_COMPETITORS = 9_999
# A competitor posts every this many seconds, about (its media spread back from `now`).
POST_EVERY_SECONDS = 2 * 86_400
# Shares of the planted gaps Meta's replies have: owners hiding like counts, posts without a
# caption, profiles without a website or a biography (the field is then absent from the reply).
HIDDEN_LIKES_PERCENT = 20
NO_CAPTION_PERCENT = 10
NO_WEBSITE_PERCENT = 40
NO_BIOGRAPHY_PERCENT = 25

_MEDIA_COUNT = name_key("competitor_media_count")
_FOLLOWERS = name_key("competitor_followers")
_PROFILE = name_key("competitor_profile")
_KIND = name_key("competitor_kind")
_LIKES = name_key("competitor_likes")
_COMMENTS = name_key("competitor_comments")
_CAPTION = name_key("competitor_caption")
_TS = name_key("competitor_timestamp")


@dataclass(frozen=True, slots=True)
class SimCompetitor:
    index: int
    id: str
    username: str
    name: str
    biography: str | None
    website: str | None
    followers_count: int
    follows_count: int
    media_count: int
    profile_picture_url: str


@dataclass(frozen=True, slots=True)
class SimCompetitorMedia:
    id: str
    index: int
    media_type: str
    media_product_type: str
    timestamp: datetime
    permalink: str
    caption: str | None
    like_count: int | None  # None: the owner hides like counts
    comments_count: int


class Competitors:
    """The world's competitor accounts, `competitor_<i>` for i in range(count)."""

    def __init__(self, seed: int, count: int, now_ts: int) -> None:
        if not 0 <= count <= MAX_COMPETITORS:
            raise ValueError(f"competitors must be in 0..{MAX_COMPETITORS}")
        self.seed = seed
        self.count = count
        self.now_ts = now_ts

    @property
    def usernames(self) -> list[str]:
        return [username(c) for c in range(self.count)]

    def by_username(self, name: str) -> SimCompetitor | None:
        """The competitor of a username, case-insensitively (Instagram usernames are)."""
        prefix, _, number = name.lower().rpartition("_")
        if prefix != "competitor" or not number.isdigit() or number != str(int(number)):
            return None
        c = int(number)
        return self.profile(c) if c < self.count else None

    def profile(self, c: int) -> SimCompetitor:
        seed = self.seed
        handle = username(c)
        # Planted so small worlds always have them: competitor 0 has more media than two full
        # pages (paging) and every profile field, competitor 1 neither website nor biography.
        media_count = (
            130 + mix(seed, c, _MEDIA_COUNT) % 40 if c == 0 else mix(seed, c, _MEDIA_COUNT) % 150
        )
        return SimCompetitor(
            index=c,
            id=ids.account_id(seed, INDEX_BASE + c),
            username=handle,
            name=f"Competitor {c}",
            biography=None
            if c == 1 or (c > 1 and mix(seed, c, _PROFILE, 1) % 100 < NO_BIOGRAPHY_PERCENT)
            else f"We compete, #{c}.",
            website=None
            if c == 1 or (c > 1 and mix(seed, c, _PROFILE, 2) % 100 < NO_WEBSITE_PERCENT)
            else f"https://competitor-{c}.example.com/",
            followers_count=int(500 * (10 ** (unit(seed, c, _FOLLOWERS) * 3))),
            follows_count=int(unit(seed, c, _FOLLOWERS, 1) * 2000),
            media_count=media_count,
            profile_picture_url=f"https://scontent.xx.fbcdn.net/v/t51.2885-15/c{c}_n.jpg",
        )

    def media(self, c: int, m: int) -> SimCompetitorMedia:
        """Media `m` of competitor `c` (0 the newest); `m` below its `media_count`."""
        seed = self.seed
        ts = self.now_ts - int((m + 0.1 + 0.8 * unit(seed, c, m, _TS)) * POST_EVERY_SECONDS)
        r = mix(seed, c, m, _KIND) % 100
        kind = ("IMAGE", "FEED") if r < 45 else ("CAROUSEL_ALBUM", "FEED") if r < 70 else None
        media_type, product = kind or ("VIDEO", "REELS")
        code = ids.shortcode(seed, c, m, MEDIA_SLOT)
        hidden = mix(seed, c, m, _LIKES, 1) % 100 < HIDDEN_LIKES_PERCENT
        return SimCompetitorMedia(
            id=ids.media_id(seed, c, m, MEDIA_SLOT),
            index=m,
            media_type=media_type,
            media_product_type=product,
            timestamp=datetime.fromtimestamp(ts, UTC),
            permalink=f"https://www.instagram.com/{'reel' if product == 'REELS' else 'p'}/{code}/",
            caption=None
            if mix(seed, c, m, _CAPTION) % 100 < NO_CAPTION_PERCENT
            else f"Competitor {c} post {m} #{mix(seed, c, _CAPTION) % 89}",
            like_count=None if hidden else int(20 + mix(seed, c, m, _LIKES) % 5000),
            comments_count=int(mix(seed, c, m, _COMMENTS) % 400),
        )


def username(c: int) -> str:
    return f"competitor_{c}"
