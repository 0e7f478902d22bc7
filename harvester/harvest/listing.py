"""Stage: account -> its media (/media pages, children inline), live stories, its profile."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from datetime import date, datetime
from functools import cache
from typing import Any

from harvester.catalog import ObjectFields, load_fields
from harvester.graph.client import GraphClient
from harvester.graph.errors import GraphError, nonexisting_field
from harvester.graph.replies import parse_media, parse_profile
from harvester.models import Account, Media, Profile

log = logging.getLogger(__name__)

# What routing needs (type, product type) plus what the lake keeps (timestamp, permalink). Children
# are expanded inline so an album costs no extra call; they are listed, never asked for insights.
# The media's details (caption, counts, URLs) are asked by the same call: which ones is catalogue
# data by version and login (`catalog.object_fields`), less what Meta refused this run.
CHILD_FIELDS = "id,media_type,timestamp,permalink"
MEDIA_FIELDS = f"id,media_type,media_product_type,timestamp,permalink,children{{{CHILD_FIELDS}}}"
STORY_FIELDS = "id,media_type,media_product_type,timestamp,permalink"


class ListingFields:
    """The `fields=` of the media listing, the stories listing and the profile call for one run:
    the catalogue's details for each node, less a field Meta refused (code 100 "nonexisting
    field"), as for an all-version addition Meta has not made yet where the run meets it.

    Shared by the run's account tasks: the first refusal drops the field for every account.
    """

    def __init__(self, catalogue: ObjectFields) -> None:
        self._fields = catalogue
        self.refused: set[str] = set()
        self._join()

    def _join(self) -> None:
        fields = self._fields
        child = ",".join((CHILD_FIELDS, *fields.child))
        base = MEDIA_FIELDS.split(",children", 1)[0]
        self.media = ",".join((base, *fields.media, f"children{{{child}}}"))
        self.story = ",".join((STORY_FIELDS, *fields.story))
        self.user = ",".join(("id", *fields.user))

    def refuse(self, error: GraphError) -> bool:
        """Drop the details field `error` says Meta does not have, True when the call should be
        asked again; False when it names none of them (the error is the caller's, as any other)."""
        name = nonexisting_field(error)
        if name is not None and name in self.refused:
            return True  # refused to another account's call meanwhile: ask again without it
        fields = self._fields
        if name is None or name not in {*fields.media, *fields.child, *fields.story, *fields.user}:
            return False
        # Meta names the first field it lacks only. One Meta added to every version on a date
        # is missing because Meta's clock is before that date: so are those added with it or
        # later, and they go too (one refused call, not one per field).
        added = _added_on()
        since = added.get(name)
        gone = {name} | {f for f, day in added.items() if since and day and day >= since}
        self.refused |= gone
        self._fields = replace(
            fields,
            media=tuple(f for f in fields.media if f not in gone),
            child=tuple(f for f in fields.child if f not in gone),
            story=tuple(f for f in fields.story if f not in gone),
            user=tuple(f for f in fields.user if f not in gone),
        )
        self._join()
        log.warning(
            "Meta has no field %s here (%s): %s not asked again this run",
            name,
            error.message,
            ", ".join(sorted(gone)),
        )
        return True


@cache
def _added_on() -> dict[str, date | None]:
    """Each catalogued field's `added_everywhere_on` (the latest, should a name recur)."""
    out: dict[str, date | None] = {}
    for entry in load_fields():
        day = entry.added_everywhere_on
        out[entry.name] = max(filter(None, (out.get(entry.name), day)), default=None)
    return out


async def _first_answered(
    client: GraphClient,
    account: Account,
    path: str,
    params: Callable[[], Mapping[str, str]],
    fields: ListingFields,
) -> AsyncIterator[list[dict[str, Any]]]:
    """`client.paginate`, asked again with fewer fields while its first page names a details
    field Meta does not have (a refusal comes with the first page, before any data)."""
    while True:
        answered = False
        try:
            async for page in client.paginate(path, params(), account=account):
                answered = True
                yield page
            return
        except GraphError as error:
            if answered or not fields.refuse(error):
                raise


async def list_media(
    client: GraphClient,
    account: Account,
    *,
    since: datetime | None,
    until: datetime | None,
    page_size: int,
    fields: ListingFields,
) -> AsyncIterator[list[Media]]:
    """Pages of an account's media (newest first) posted in [since, until), children after parents.

    `since`/`until` go to Meta as unix times and are also enforced here, because the edge is only
    documented to honour them, and because newest-first order lets us stop at the first older page.
    """

    def params() -> Mapping[str, str]:
        query = {"fields": fields.media, "limit": str(page_size)}
        if since is not None:
            query["since"] = str(int(since.timestamp()))
        if until is not None:
            query["until"] = str(int(until.timestamp()))
        return query

    async for page in _first_answered(client, account, f"{account.id}/media", params, fields):
        kept: list[Media] = []
        older_seen = False
        for item in page:
            family = list(parse_media(item, account.id))
            posted = family[0].timestamp
            if posted is not None and until is not None and posted >= until:
                continue
            if posted is not None and since is not None and posted < since:
                older_seen = True
                continue
            kept.extend(family)
        if kept:
            yield kept
        if older_seen:
            return


async def list_stories(client: GraphClient, account: Account, fields: ListingFields) -> list[Media]:
    """The account's live stories: they exist for 24 hours only, so each run takes what is there."""
    stories: list[Media] = []

    def params() -> Mapping[str, str]:
        return {"fields": fields.story, "limit": "100"}

    async for page in _first_answered(client, account, f"{account.id}/stories", params, fields):
        for item in page:
            stories.extend(parse_media(item, account.id))
    return stories


async def fetch_profile(client: GraphClient, account: Account, fields: ListingFields) -> Profile:
    """The owned account's IG User profile (followers, media count, ...): one call per run, an
    `accounts` row committed with the account's own unit."""
    while True:
        try:
            reply = await client.get(account.id, {"fields": fields.user}, account=account)
        except GraphError as error:
            if not fields.refuse(error):
                raise
            continue
        return parse_profile(reply, account.id)
