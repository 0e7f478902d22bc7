"""Business discovery: the request's `fields` expression and pure parsers of Meta's reply.

Business discovery reads another professional account's public profile and media through an
owned IG user's node, by field expansion:

    GET /{via-ig-user-id}?fields=business_discovery.username(<name>){id,username,...,
        media.limit(n){id,caption,like_count,...}}

and its further media pages by asking again with `media.after(<cursor>).limit(n)`, the cursor
read from `business_discovery.media.paging.cursors.after` (the nested object carries no `next`
URL; the last page has no `after`). Fields Meta omits (a hidden like count, an account without a
website) parse to None.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from harvester.graph.errors import MalformedReply
from harvester.graph.replies import optional_count, optional_str, parse_timestamp, read_profile
from harvester.models import Media, MediaDetails, Profile, Source

__all__ = [
    "MEDIA_FIELDS",
    "USERNAME",
    "DiscoveryPage",
    "discovery_fields",
    "parse_discovery",
]

# A competitor's media: what `media` needs plus the public counts (no insights exist for them).
MEDIA_FIELDS = (
    "id",
    "caption",
    "like_count",
    "comments_count",
    "timestamp",
    "permalink",
    "media_type",
    "media_product_type",
)
# Instagram usernames: letters, digits, periods and underscores, at most 30. Checked before a
# name goes into a field expression, where a ')' or '}' would change the request.
USERNAME = re.compile(r"[A-Za-z0-9._]{1,30}")


@dataclass(frozen=True, slots=True)
class DiscoveryPage:
    """One business discovery reply: the profile (on the first page), a page of media, and the
    cursor of the next page (None: no more media)."""

    profile: Profile | None
    media: list[Media]
    after: str | None


def discovery_fields(
    username: str,
    *,
    media_limit: int,
    after: str | None = None,
    profile: Sequence[str] = (),
) -> str:
    """The `fields` value asking `username`'s id, the `profile` fields (the catalogue's IG User
    fields, as an owned account's profile asks; none on later pages) and `media_limit` of its
    media (none when 0), from `after` when given."""
    if not USERNAME.fullmatch(username):
        raise ValueError(f"not an Instagram username: {username!r:.40}")
    parts = ["id", *profile]
    if media_limit > 0:
        cursor = f".after({after})" if after else ""
        parts.append(f"media{cursor}.limit({media_limit}){{{','.join(MEDIA_FIELDS)}}}")
    return f"business_discovery.username({username}){{{','.join(parts)}}}"


def parse_discovery(reply: object, *, profile: bool = True) -> DiscoveryPage:
    """A business discovery reply: the competitor's profile (when `profile`), its media as
    `Media` (source competitor, the counts as details) and the next page's cursor."""
    if not isinstance(reply, dict) or not isinstance(
        found := reply.get("business_discovery"), dict
    ):
        raise MalformedReply("business discovery reply without a 'business_discovery' object")
    account_id = found.get("id")
    if not isinstance(account_id, str) or not account_id:
        raise MalformedReply("business_discovery without an id")
    media, after = _media(found.get("media"), account_id)
    who = read_profile(found, account_id, Source.COMPETITOR) if profile else None
    return DiscoveryPage(who, media, after)


def _media(edge: object, account_id: str) -> tuple[list[Media], str | None]:
    if edge is None:
        return [], None  # asked no media, or the account has none
    if not isinstance(edge, dict) or not isinstance(data := edge.get("data"), list):
        raise MalformedReply("business_discovery.media without a 'data' list")
    out = []
    for item in data:
        if not isinstance(item, dict) or not isinstance(media_id := item.get("id"), str):
            raise MalformedReply(f"business_discovery media item without an id: {item!r:.120}")
        out.append(
            Media(
                account_id=account_id,
                id=media_id,
                media_type=optional_str(item, "media_type") or "",
                media_product_type=optional_str(item, "media_product_type") or "FEED",
                timestamp=parse_timestamp(item.get("timestamp")),
                permalink=optional_str(item, "permalink"),
                details=MediaDetails(
                    caption=optional_str(item, "caption"),
                    like_count=optional_count(item, "like_count"),
                    comments_count=optional_count(item, "comments_count"),
                ),
                source=Source.COMPETITOR,
            )
        )
    paging = edge.get("paging")
    cursors = paging.get("cursors") if isinstance(paging, dict) else None
    after = cursors.get("after") if isinstance(cursors, dict) else None
    if after is not None and not isinstance(after, str):
        raise MalformedReply("business_discovery.media cursor is not a string")
    # An empty page with a cursor would page forever: nothing more is there.
    return out, after if out and after else None
