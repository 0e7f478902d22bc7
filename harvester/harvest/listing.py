"""Stage: account -> its media (cursor pages of /media, children inline) and live stories."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from harvester.graph.client import GraphClient
from harvester.graph.replies import parse_media
from harvester.models import Account, Media

# What routing needs (type, product type) plus what the lake keeps (timestamp, permalink). Children
# are expanded inline so an album costs no extra call; they are listed, never asked for insights.
CHILD_FIELDS = "id,media_type,timestamp,permalink"
MEDIA_FIELDS = f"id,media_type,media_product_type,timestamp,permalink,children{{{CHILD_FIELDS}}}"
STORY_FIELDS = "id,media_type,media_product_type,timestamp,permalink"


async def list_media(
    client: GraphClient,
    account: Account,
    *,
    since: datetime | None,
    until: datetime | None,
    page_size: int,
) -> AsyncIterator[list[Media]]:
    """Pages of an account's media (newest first) posted in [since, until), children after parents.

    `since`/`until` go to Meta as unix times and are also enforced here, because the edge is only
    documented to honour them, and because newest-first order lets us stop at the first older page.
    """
    params = {"fields": MEDIA_FIELDS, "limit": str(page_size)}
    if since is not None:
        params["since"] = str(int(since.timestamp()))
    if until is not None:
        params["until"] = str(int(until.timestamp()))
    async for page in client.paginate(f"{account.id}/media", params, account=account):
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


async def list_stories(client: GraphClient, account: Account) -> list[Media]:
    """The account's live stories: they exist for 24 hours only, so each run takes what is there."""
    stories: list[Media] = []
    params = {"fields": STORY_FIELDS, "limit": "100"}
    async for page in client.paginate(f"{account.id}/stories", params, account=account):
        for item in page:
            stories.extend(parse_media(item, account.id))
    return stories
