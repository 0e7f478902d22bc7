"""`business_discovery`: another professional account's public profile and media, read through
an owned IG user's node with field expansion.

    GET /{ig-user-id}?fields=business_discovery.username(<name>){id,username,followers_count,
        media.limit(n).after(<cursor>){id,caption,like_count,...}}

Shapes as Meta's (see the recorded python-facebook replies `discovery_medias_p*.json`): the
competitor's fields under `business_discovery`, its `id` always; the nested `media` object with
`data` and `paging.cursors` only, `after` while more media follow and `before` past the first
page, never a `next` URL (a client pages by asking again with `media.after(<cursor>)`). An
unknown or non-professional username is Meta's code 110, subcode 2207013.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harvester.simulator import replies
from harvester.simulator.competitors import Competitors, SimCompetitor, SimCompetitorMedia
from harvester.simulator.fields import Field, check_known, render
from harvester.simulator.objects import clamp_limit, cursor, page_window, parse_int

# Public fields of another IG user and of its media (business discovery shows nothing else: no
# insights, no stories, no tokens).
PROFILE_FIELDS = frozenset(
    [
        "id",
        "username",
        "name",
        "biography",
        "website",
        "followers_count",
        "follows_count",
        "media_count",
        "profile_picture_url",
        "ig_id",
        "media",
    ]
)
MEDIA_FIELDS = frozenset(
    [
        "id",
        "caption",
        "like_count",
        "comments_count",
        "timestamp",
        "permalink",
        "media_type",
        "media_product_type",
    ]
)
NODE = "IGUser"  # Meta's node name in "nonexisting field" errors
MEDIA_NODE = "IGMedia"
ID_ONLY = (Field("id", (), None),)


def asks_discovery(specs: Sequence[Field]) -> bool:
    """Whether a node read expands business_discovery: the router charges it to the app."""
    return any(spec.name == "business_discovery" for spec in specs)


class Discovery:
    """Renders the `business_discovery` field of one world's competitors."""

    def __init__(self, competitors: Competitors) -> None:
        self.competitors = competitors

    def render(self, spec: Field) -> dict[str, Any]:
        name = spec.modifier("username")
        if not name:
            # Meta's wording for a business_discovery without username is not recorded: a guess.
            raise replies.bad_param("The parameter username is required")
        found = self.competitors.by_username(name)
        if found is None:
            raise replies.invalid_user_id(name)
        specs = spec.sub or ID_ONLY
        check_known(specs, PROFILE_FIELDS, NODE)
        return render(specs, lambda field: self._profile_value(found, field), found.id)

    def _profile_value(self, who: SimCompetitor, field: Field) -> Any:
        if field.name == "media":
            return self._media(who, field)
        if field.name == "ig_id":
            return 8_000_000_000 + who.index
        return getattr(who, field.name)

    def _media(self, who: SimCompetitor, field: Field) -> dict[str, Any]:
        specs = field.sub or ID_ONLY
        check_known(specs, MEDIA_FIELDS, MEDIA_NODE)
        limit = clamp_limit(parse_int(field.modifier("limit"), "limit"))
        key = f"c{who.index}"
        after, before = field.modifier("after"), field.modifier("before")
        total = who.media_count
        start, end = page_window(key, 0, total, limit, after, before)
        data = [
            _media_fields(self.competitors.media(who.index, m), specs) for m in range(start, end)
        ]
        cursors: dict[str, str] = {}
        if start < end and start > 0:
            cursors["before"] = cursor(key, start)
        if start < end < total:
            cursors["after"] = cursor(key, end - 1)
        return {"data": data, "paging": {"cursors": cursors}} if cursors else {"data": data}


def _media_fields(media: SimCompetitorMedia, specs: Sequence[Field]) -> dict[str, Any]:
    def value(field: Field) -> Any:
        if field.name == "timestamp":
            return replies.fmt_ts(media.timestamp)
        return getattr(media, field.name)

    return render(specs, value, media.id)
