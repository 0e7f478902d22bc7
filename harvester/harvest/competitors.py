"""Competitors through business discovery: each one's profile and newest media, one unit each.

Per competitor, one business discovery request on an owned account's node asks the profile and
the first page of media, and further requests follow the nested cursor until
`[harvest] competitor_media` are had (`graph.discovery_replies`). Its rows (one `accounts` row,
its media as `media` rows, source competitor) travel as one unit, so a checkpoint never splits
a competitor and a rerun of the job skips one already committed. Competitor media get no
insights request, ever: Meta has none for other accounts.

Business discovery counts against the app's platform limit, not the asking account's BUC, so
every call is charged to the app scope (`graph.gate.Charge`). Which owned account asks: the
competitor's `via`, else the configured accounts in order; one whose token is dead (known
closed, or dying on this very call) gives way to the next. An unknown or non-professional
username is one `errors` row (stage `competitors`) and the run goes on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from anyio.streams.memory import MemoryObjectSendStream

from harvester.config import Competitor
from harvester.graph.client import GraphClient
from harvester.graph.discovery_replies import discovery_fields, parse_discovery
from harvester.graph.errors import AccountFatal, GraphError, NothingWorks
from harvester.harvest.rows import RunRows, Stage
from harvester.lake.checkpoint import COMPETITOR_UNIT, Unit
from harvester.models import Account, Media, Profile

__all__ = ["COMPETITORS_IN_FLIGHT", "CompetitorsStage", "discovery_calls", "unit_id"]

log = logging.getLogger(__name__)

# Competitors asked at once. Their calls share the app's platform limit with every other call of
# the run, and each is a few pages at most: a handful in flight keeps the app's budget for the
# owned accounts' insights while hundreds of competitors still finish in minutes.
COMPETITORS_IN_FLIGHT = 4


def unit_id(username: str) -> str:
    """A competitor's unit in the job's manifests (usernames hold no '/': never a clash)."""
    return COMPETITOR_UNIT + username


def discovery_calls(media: int, page_size: int) -> int:
    """Business discovery calls per competitor at most: the first carries the profile and the
    first page of media, each further page one more (fewer when the competitor has fewer)."""
    return max(1, math.ceil(media / page_size))


class NoAccountToAsk(GraphError):
    """No owned account with a working token was left to ask business discovery through."""


class CompetitorsStage:
    """Harvests competitors into units; see the module docstring."""

    def __init__(
        self,
        client: GraphClient,
        rows: RunRows,
        *,
        media: int,
        page_size: int,
        profile_fields: Sequence[str],
    ) -> None:
        self._client = client
        self._rows = rows
        self._media = media
        self._page_size = page_size
        # The catalogue's IG User fields: a competitor's row has an owned account's columns.
        self._profile_fields = tuple(profile_fields)

    async def produce(
        self,
        competitors: Sequence[Competitor],
        accounts: Sequence[Account],
        done: Callable[[str], bool | None],
        units: MemoryObjectSendStream[Unit],
    ) -> None:
        """Every competitor not `done` in the job, as units into `units` (closed at the end)."""
        async with units:
            todo_send, todo_recv = anyio.create_memory_object_stream[Competitor]()
            async with anyio.create_task_group() as tg:
                async with todo_recv:
                    for _ in range(min(COMPETITORS_IN_FLIGHT, len(competitors))):
                        tg.start_soon(self._worker, todo_recv.clone(), accounts, units.clone())
                async with todo_send:
                    for competitor in competitors:
                        if done(unit_id(competitor.username)) is None:
                            await todo_send.send(competitor)

    async def _worker(
        self,
        todo: ObjectReceiveStream[Competitor],
        accounts: Sequence[Account],
        units: ObjectSendStream[Unit],
    ) -> None:
        async with todo, units:
            async for competitor in todo:
                unit = await self.harvest(competitor, accounts)
                if (stop := self._client.stopped()) is not None:
                    raise stop  # its rows would hold NothingWorks errors, not answers
                await units.send(unit)

    async def harvest(self, competitor: Competitor, accounts: Sequence[Account]) -> Unit:
        """The competitor's unit: its profile and media, or the error row of why not."""
        uid = unit_id(competitor.username)
        error: GraphError = NoAccountToAsk(
            "no owned account with a working token to ask business discovery through"
        )
        asked_via: str | None = competitor.via
        for account in _candidates(competitor, accounts):
            if self._client.closed(account.id) is not None:
                continue
            asked_via = account.id
            try:
                profile, media = await self._fetch(account, competitor.username)
            except NothingWorks:
                raise
            except AccountFatal as dead:
                # This token died (the client closed the account): the next account asks.
                log.info("competitor %s: account %s failed, trying the next", uid, account.id)
                error = dead
                continue
            except GraphError as failed:
                error = failed  # unknown username (ProfileUnavailable), a malformed reply, ...
                break
            blocks = [self._rows.profiles([profile]), self._rows.media(media)]
            return Unit("competitor", (uid,), blocks)
        row = self._rows.error_block(asked_via, competitor.username, Stage.COMPETITORS, error)
        return Unit("competitor", (uid,), [row], {"complete": False})

    async def _fetch(self, account: Account, username: str) -> tuple[Profile, list[Media]]:
        """The competitor's profile rows and newest media, page by page."""
        want = self._media
        fields = discovery_fields(
            username, media_limit=min(want, self._page_size), profile=self._profile_fields
        )
        reply = await self._get(account, fields)
        first = parse_discovery(reply)
        assert first.profile is not None
        media: list[Media] = []
        seen: set[str] = set()
        page, after = first.media, first.after
        while True:
            for item in page:
                if len(media) < want and item.id not in seen:
                    seen.add(item.id)
                    media.append(item)
            if after is None or len(media) >= want:
                break
            limit = min(want - len(media), self._page_size)
            fields = discovery_fields(username, media_limit=limit, after=after)
            nxt = parse_discovery(await self._get(account, fields), profile=False)
            page, after = nxt.media, nxt.after
        return first.profile, media

    async def _get(self, account: Account, fields: str) -> Any:
        return await self._client.get(account.id, {"fields": fields}, account=account, charge="app")


def _candidates(competitor: Competitor, accounts: Sequence[Account]) -> list[Account]:
    """Who may ask for the competitor, in order: its `via` first (when harvested), then the
    configured accounts in their order."""
    first = [a for a in accounts if a.id == competitor.via]
    return first + [a for a in accounts if a.id != competitor.via]
