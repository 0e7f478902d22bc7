"""Node and edge reads: IG users, media, pages, `/media`, `/stories`, `/children`, `me/accounts`.

Fields are rendered in the order the client asked for them, with `id` appended when not asked,
as Meta does; a field Meta knows but has no value for (an empty caption) is simply absent.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from harvester.simulator import replies, validity
from harvester.simulator.call import Call
from harvester.simulator.entities import SimAccount, SimMedia
from harvester.simulator.fields import Field, check_known, parse_fields, render
from harvester.simulator.timeparse import parse_time
from harvester.simulator.world import World

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
ID_ONLY = parse_fields("id")
PAGE_DEFAULT = parse_fields("access_token,category,category_list,name,id,tasks")
TASKS = ["ANALYZE", "ADVERTISE", "MESSAGING", "MODERATE", "CREATE_CONTENT", "MANAGE"]
USER_NODE = "IGUser"  # node names as they appear in Meta's "nonexisting field" errors
MEDIA_NODE = "ShadowIGMedia"
CHILD_NODE = "ShadowIGMedia"
PAGE_NODE = "Page"

InsightsRenderer = Callable[[SimMedia, Field], dict[str, Any]]
DiscoveryRenderer = Callable[[Field], dict[str, Any]]


def requested(call: Call, default: tuple[Field, ...] = ID_ONLY) -> tuple[Field, ...]:
    text = call.params.get("fields")
    if text is None:
        return default
    specs = parse_fields(text)
    return specs or default


def int_param(call: Call, name: str) -> int | None:
    return parse_int(call.params.get(name), name)


def parse_int(raw: str | None, name: str) -> int | None:
    """An integer parameter (a query's, or a field modifier's such as `.limit(n)`)."""
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise replies.bad_param(f"Param {name} must be a valid integer") from None


def time_param(call: Call, name: str, now: int) -> int | None:
    """`since`/`until`: a Unix time or any strtotime string, as Meta takes them."""
    raw = call.params.get(name)
    if raw is None or raw == "":
        return None
    found = parse_time(raw, now)
    if found is None:
        # Meta's wording for an unreadable time is not recorded; this is our guess.
        raise replies.bad_param(f"Param {name} must be a valid Unix timestamp or strtotime string")
    return found


def page_limit(call: Call) -> int:
    return clamp_limit(int_param(call, "limit"))


def clamp_limit(limit: int | None) -> int:
    """A page size as Meta takes it: the default when absent or not positive, at most the max."""
    if limit is None or limit <= 0:
        return DEFAULT_LIMIT
    return min(limit, MAX_LIMIT)


def cursor(key: str, position: int) -> str:
    raw = f"sim:{key}:{position}".encode()
    return base64.urlsafe_b64encode(b"QVFI" + raw).decode().rstrip("=")


def decode_cursor(key: str, text: str) -> int:
    """The list position a cursor points at; a foreign or mangled cursor is a code-100 error."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        prefix, _, pos = raw[4:].decode().rpartition(":")
        if raw[:4] == b"QVFI" and prefix == f"sim:{key}" and pos.isdigit():
            return int(pos)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise replies.bad_param("Invalid cursor")


def paginate(call: Call, key: str, lo: int, hi: int) -> tuple[range, dict[str, Any] | None]:
    """The positions of this page within [lo, hi) and its `paging` object (None when empty)."""
    after, before = call.params.get("after"), call.params.get("before")
    start, end = page_window(key, lo, hi, page_limit(call), after, before)
    if start >= end:
        return range(0), None
    first, last = cursor(key, start), cursor(key, end - 1)
    page: dict[str, Any] = {"cursors": {"before": first, "after": last}}
    if (after or before) and start > lo:
        page["previous"] = call.url_with(after=None, before=first)
    if end < hi:
        page["next"] = call.url_with(before=None, after=last)
    return range(start, end), page


def page_window(
    key: str, lo: int, hi: int, limit: int, after: str | None, before: str | None
) -> tuple[int, int]:
    """The [start, end) positions of a page of at most `limit` within [lo, hi): after the
    `after` cursor, before the `before` cursor, or from the start."""
    if after:
        start = max(lo, decode_cursor(key, after) + 1)
        return start, min(hi, start + limit)
    if before:
        end = min(hi, decode_cursor(key, before))
        return max(lo, end - limit), end
    return lo, min(hi, lo + limit)


class ObjectReader:
    """Renders nodes and edges of one world; insights expansion is delegated to the caller."""

    def __init__(
        self,
        world: World,
        insights: InsightsRenderer,
        discovery: DiscoveryRenderer,
        login: str = validity.FACEBOOK,
        as_of: date | None = None,
    ) -> None:
        self.world = world
        self._insights = insights
        self._discovery = discovery  # `business_discovery` (simulator.discovery)
        # The IG Media fields each login has on `as_of` (the newer counts: Facebook Login only);
        # a media answers its account's login (an Instagram Login account's through its host).
        self._login = login
        self._media_allowed = {
            name: validity.ig_media_fields(name, as_of)
            for name in (validity.FACEBOOK, validity.INSTAGRAM)
        }

    # -- media ----------------------------------------------------------------------------

    def media_fields(self, media: SimMedia, specs: Sequence[Field]) -> dict[str, Any]:
        if media.is_child:
            allowed = validity.CHILD_FIELDS
        else:
            account_login = self.world.accounts[media.account_index].login
            login = (
                validity.INSTAGRAM
                if validity.INSTAGRAM in (self._login, account_login)
                else self._login
            )
            allowed = self._media_allowed[login]
        check_known(tuple(specs), allowed, CHILD_NODE if media.is_child else MEDIA_NODE)
        return render(specs, lambda spec: self._media_value(media, spec), media.id)

    def _media_value(self, media: SimMedia, spec: Field) -> Any:
        name = spec.name
        acc = self.world.accounts[media.account_index]
        if name == "id":
            return media.id
        if name == "media_type":
            return media.media_type
        if name == "media_product_type":
            return media.media_product_type
        if name == "timestamp":
            return replies.fmt_ts(media.timestamp)
        if name == "permalink":
            return media.permalink
        if name == "shortcode":
            return media.shortcode
        if name in ("ig_id", "legacy_instagram_media_id"):
            return str(2_500_000_000_000_000_000 + int(media.id) % 10**17)
        if name == "owner":
            return {"id": acc.id}
        if name == "username":
            return acc.username
        if name == "media_url":
            return self.world.media_url(media)
        if name == "thumbnail_url":
            return self.world.thumbnail_url(media)
        if media.is_child:
            return None
        if name == "caption":
            return self.world.caption(media)
        if name == "like_count":
            return None if self.world.likes_hidden(media) else self.world.value_of(media, "likes")
        if name == "comments_count":
            return self.world.value_of(media, "comments")
        if name == "is_comment_enabled":
            return self.world.comments_enabled(media)
        if name in validity.MEDIA_COUNT_FIELDS:
            return self.world.value_of(media, validity.MEDIA_COUNT_FIELDS[name])
        if name == "is_shared_to_feed":
            return True if media.media_product_type == "REELS" else None
        if name == "children":
            if not media.children_ids:
                return None
            sub = spec.sub or ID_ONLY
            kids = self.world.children(media.id)
            return {"data": [self.media_fields(child, sub) for child in kids]}
        if name == "insights":
            return self._insights(media, spec)
        return None

    def media_node(self, media: SimMedia, call: Call) -> dict[str, Any]:
        if media.trouble == "deleted":
            raise replies.object_missing(media.id)
        return self.media_fields(media, requested(call))

    def children_edge(self, media: SimMedia, call: Call) -> dict[str, Any]:
        if media.trouble == "deleted":
            raise replies.object_missing(media.id)
        specs = requested(call)
        return {"data": [self.media_fields(c, specs) for c in self.world.children(media.id)]}

    def media_edge(self, acc: SimAccount, call: Call) -> dict[str, Any]:
        now = self.world.now_ts
        since, until = time_param(call, "since", now), time_param(call, "until", now)
        lo, hi = self.world.index_range(acc.index, since, until)
        positions, page = paginate(call, f"m{acc.index}", lo, hi)
        specs = requested(call)
        data = [self.media_fields(self.world.media_at(acc.index, m), specs) for m in positions]
        return {"data": data} if page is None else {"data": data, "paging": page}

    def stories_edge(self, acc: SimAccount, call: Call) -> dict[str, Any]:
        stories = self.world.stories(acc.id)
        positions, page = paginate(call, f"s{acc.index}", 0, len(stories))
        specs = requested(call)
        data = [self.media_fields(stories[i], specs) for i in positions]
        return {"data": data} if page is None else {"data": data, "paging": page}

    # -- IG users -------------------------------------------------------------------------

    def user_fields(self, acc: SimAccount, specs: Sequence[Field], call: Call) -> dict[str, Any]:
        check_known(tuple(specs), validity.IG_USER_FIELDS, USER_NODE)
        return render(specs, lambda spec: self._user_value(acc, spec, call), acc.id)

    def _user_value(self, acc: SimAccount, spec: Field, call: Call) -> Any:
        values: dict[str, Any] = {
            "id": acc.id,
            "username": acc.username,
            "name": acc.name,
            "biography": self.world.biography(acc),
            "followers_count": acc.followers_count,
            "follows_count": acc.follows_count,
            "media_count": self.world.media_per_account,
            "profile_picture_url": f"https://scontent.xx.fbcdn.net/v/t51.2885-15/{acc.id}_n.jpg",
            "website": self.world.website(acc),
            "ig_id": 7_000_000_000 + acc.index,
            "legacy_instagram_user_id": str(7_000_000_000 + acc.index),
            "has_profile_pic": True,
            "shopping_product_tag_eligibility": False,
        }
        if spec.name in values:
            return values[spec.name]
        if spec.name == "business_discovery":
            return self._discovery(spec)
        if spec.name in ("media", "stories"):
            return self._expanded_edge(acc, spec, call)
        return None

    def _expanded_edge(self, acc: SimAccount, spec: Field, call: Call) -> dict[str, Any]:
        sub_params: dict[str, str] = {"fields": _unparse(spec.sub or ID_ONLY)}
        limit = spec.modifier("limit")
        if limit is not None:
            sub_params["limit"] = limit
        sub = Call("GET", f"{call.path}/{spec.name}", [], sub_params, None, call.base_url)
        body = self.media_edge(acc, sub) if spec.name == "media" else self.stories_edge(acc, sub)
        body.get("paging", {}).pop("next", None)  # an expanded edge has no usable next URL here
        return body

    def user_node(self, acc: SimAccount, call: Call) -> dict[str, Any]:
        return self.user_fields(acc, requested(call), call)

    # -- pages and discovery --------------------------------------------------------------

    def page_fields(self, a: int, specs: Sequence[Field], call: Call) -> dict[str, Any]:
        check_known(tuple(specs), validity.PAGE_FIELDS, PAGE_NODE)
        world = self.world
        orphan = a >= len(world.accounts)
        acc = None if orphan else world.accounts[a]
        out: dict[str, Any] = {}
        for spec in specs:
            name = spec.name
            if name == "id":
                out["id"] = world.orphan_page_id if acc is None else acc.page_id
            elif name == "name":
                out["name"] = "Simulated page without Instagram" if acc is None else acc.name
            elif name == "access_token":
                out["access_token"] = world.orphan_page_token if acc is None else acc.token
            elif name == "category":
                out["category"] = "Business Service"
            elif name == "category_list":
                out["category_list"] = [{"id": "2500", "name": "Business Service"}]
            elif name == "tasks":
                out["tasks"] = list(TASKS)
            elif acc is not None:  # instagram_business_account / connected_instagram_account
                out[name] = self.user_fields(acc, spec.sub or ID_ONLY, call)
        out.setdefault("id", world.orphan_page_id if acc is None else acc.page_id)
        return out

    def page_node(self, a: int, call: Call) -> dict[str, Any]:
        return self.page_fields(a, requested(call), call)

    def me_accounts(self, call: Call) -> dict[str, Any]:
        total = len(self.world.accounts) + 1  # the last page has no linked IG account
        # Instagram Login accounts (the first ones) have no Page: the user manages none of theirs.
        positions, page = paginate(call, "pages", self.world.instagram_accounts, total)
        specs = requested(call, PAGE_DEFAULT)
        data = [self.page_fields(a, specs, call) for a in positions]
        return {"data": data} if page is None else {"data": data, "paging": page}


def _unparse(specs: Sequence[Field]) -> str:
    parts = []
    for spec in specs:
        text = spec.name + "".join(f".{k}({v})" for k, v in spec.modifiers)
        if spec.sub:
            text += "{" + _unparse(spec.sub) + "}"
        parts.append(text)
    return ",".join(parts)
