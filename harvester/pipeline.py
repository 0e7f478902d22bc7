"""run_harvest(): one task group, bounded streams between the stages, a report at the end.

    accounts -> K account tasks: listing -> media -> insights (M workers each) -> Rows -> sink

Every arrow is a bounded anyio memory object stream, so a slow disk fills the rows buffer, the
insights workers block on send and stop issuing HTTP: memory is bounded by buffer sizes, never by
the number of accounts or media. Producers close their send ends, so consumers end without
sentinels; an exception in any stage cancels the group and propagates, after the sink has committed
what it already holds.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from anyio.streams.memory import MemoryObjectSendStream

from harvester.account import AccountInsightsStage
from harvester.client import GraphClient
from harvester.config import Config
from harvester.discovery import discover_into
from harvester.errors import AccountFatal, GraphError
from harvester.insights import InsightsStage, error_row
from harvester.listing import list_media, list_stories
from harvester.models import Account, Media, Rows
from harvester.parsing import MalformedReply
from harvester.report import RunCounters, RunReport
from harvester.schema import Dataset
from harvester.sink import ParquetSink

# Media of one account waiting for its insights workers: a page or two, enough to keep them busy
# while the next listing page arrives (times the accounts in flight, for the whole run).
MEDIA_BUFFER = 200
# Row blocks waiting for the sink: small on purpose, it is what makes a slow disk slow the fetchers.
ROWS_BUFFER = 64
# The sink task hands rows to its writer thread in chunks of about this many rows (one thread hop
# per chunk instead of per media).
SINK_CHUNK_ROWS = 16_384


@dataclass(frozen=True)
class HarvestWindow:
    """Media timestamps to harvest: [since, until); None means unbounded. Also the account
    insights window, where no bounds mean the last 30 days (see `harvester.account`)."""

    since: datetime | None = None
    until: datetime | None = None


def new_run_id(now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


async def run_harvest(
    config: Config,
    *,
    window: HarvestWindow = HarvestWindow(),
    counters: RunCounters | None = None,
    run_id: str | None = None,
) -> RunReport:
    """Harvest every configured account into the lake and return the run report (also written to
    `<output>/_runs/<run_id>.json`)."""
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    run_id = run_id or new_run_id(started)
    counters = counters or RunCounters()
    counters.accounts_total = len(config.accounts)
    sink = ParquetSink(
        config.output.path, run_id=run_id, snapshot_date=started.date(), settings=config.output
    )
    client = GraphClient(config.graph, config.limits, config.retry, counters=counters)
    async with client:
        if config.discovery.token is not None:
            accounts, reported = await discover_into(
                client, config, run_id=run_id, counters=counters
            )
            config = replace(config, accounts=accounts)
            counters.accounts_total = len(accounts)
            for block in reported:
                sink.write(block)
        stage = InsightsStage(
            client,
            api_version=config.graph.api_version,
            run_id=run_id,
            counters=counters,
            breakdowns=config.harvest.breakdowns,
        )
        harvest = _Harvest(config, window, client, stage, counters, run_id)
        try:
            async with anyio.create_task_group() as tg:
                rows_send, rows_recv = anyio.create_memory_object_stream[Rows](ROWS_BUFFER)
                tg.start_soon(_drain, rows_recv, sink)
                async with rows_send:
                    await harvest.produce(rows_send)
        finally:
            # Commit what was harvested even when the run fails or is cancelled (Ctrl-C).
            with anyio.CancelScope(shield=True):
                stats = await anyio.to_thread.run_sync(sink.close)
        client_stats = client.statistics()
    failed = {a.id: _describe(e) for a in config.accounts if (e := client.gate.closed(a.id))}
    report = RunReport(
        run_id=run_id,
        api_version=config.graph.api_version,
        started_at=started,
        finished_at=datetime.now(UTC),
        wall_seconds=round(time.perf_counter() - t0, 3),
        accounts_ok=len(config.accounts) - len(failed),
        accounts_failed=len(failed),
        media_listed=counters.media_listed,
        rows={d.value: stats.rows.get(d.value, 0) for d in Dataset},
        files=stats.files,
        errors_by_code=dict(counters.errors_by_code),
        requests=client_stats.requests,
        retries=client_stats.retries,
        exit_code=3 if stats.rows.get(Dataset.ERRORS.value, 0) else 0,
        failed_accounts=failed,
    )
    await anyio.to_thread.run_sync(sink.write_bytes, f"_runs/{run_id}.json", report.to_json())
    return report


class _Harvest:
    """The producing half of a run: account listing workers feeding insights workers."""

    def __init__(
        self,
        config: Config,
        window: HarvestWindow,
        client: GraphClient,
        stage: InsightsStage,
        counters: RunCounters,
        run_id: str,
    ) -> None:
        self._config = config
        self._window = window
        self._client = client
        self._stage = stage
        self._counters = counters
        self._run_id = run_id
        self._account_stage = AccountInsightsStage(
            client,
            api_version=config.graph.api_version,
            run_id=run_id,
            counters=counters,
            breakdowns=config.harvest.breakdowns,
        )

    async def produce(self, rows: MemoryObjectSendStream[Rows]) -> None:
        limits = self._config.limits
        accounts_send, accounts_recv = anyio.create_memory_object_stream[Account]()
        async with anyio.create_task_group() as tg:
            async with accounts_recv:
                for _ in range(min(limits.max_accounts_in_flight, len(self._config.accounts))):
                    tg.start_soon(self._account_worker, accounts_recv.clone(), rows.clone())
            async with accounts_send:
                for account in self._config.accounts:
                    await accounts_send.send(account)

    async def _account_worker(
        self, accounts: ObjectReceiveStream[Account], rows: MemoryObjectSendStream[Rows]
    ) -> None:
        async with accounts, rows:
            async for account in accounts:
                await self._harvest_account(account, rows)
                self._counters.accounts_done += 1

    async def _harvest_account(self, account: Account, rows: MemoryObjectSendStream[Rows]) -> None:
        """Listing feeds this account's own insights workers, so an account that is throttled
        or blocked holds up its own workers only, never another account's."""
        media_send, media_recv = anyio.create_memory_object_stream[Media](MEDIA_BUFFER)
        async with anyio.create_task_group() as tg:
            async with media_recv:
                for _ in range(self._config.limits.max_requests_per_account):
                    tg.start_soon(self._insights_worker, account, media_recv.clone(), rows.clone())
            async with media_send:
                await self._list_account(account, media_send, rows)

    async def _list_account(
        self,
        account: Account,
        media_out: ObjectSendStream[Media],
        rows: ObjectSendStream[Rows],
    ) -> None:
        harvest = self._config.harvest
        try:
            async for page in list_media(
                self._client,
                account,
                since=self._window.since,
                until=self._window.until,
                page_size=harvest.media_page_size,
            ):
                await self._emit_media(account, page, media_out, rows)
            if harvest.stories:
                await self._emit_media(
                    account, await list_stories(self._client, account), media_out, rows
                )
        except AccountFatal as error:
            await rows.send(self._error(account.id, account.id, "listing", error))
        except (GraphError, MalformedReply) as error:
            # The account's listing broke off; what was listed before stays harvested.
            await rows.send(self._error(account.id, account.id, "listing", error))
        if harvest.account_insights and self._client.gate.closed(account.id) is None:
            window = self._window
            async for block in self._account_stage.harvest(account, window.since, window.until):
                await rows.send(block)

    async def _emit_media(
        self,
        account: Account,
        page: Sequence[Media],
        media_out: ObjectSendStream[Media],
        rows: ObjectSendStream[Rows],
    ) -> None:
        if not page:
            return
        await rows.send(Rows(Dataset.MEDIA, [self._media_row(m) for m in page]))
        for media in page:
            if media.is_child:
                continue
            self._counters.media_listed += 1
            if self._config.harvest.media_insights:
                await media_out.send(media)

    async def _insights_worker(
        self,
        account: Account,
        media_in: ObjectReceiveStream[Media],
        rows: ObjectSendStream[Rows],
    ) -> None:
        async with media_in, rows:
            async for media in media_in:
                for block in await self._stage.harvest(account, media):
                    await rows.send(block)
                self._counters.media_done += 1

    def _media_row(self, media: Media) -> tuple[Any, ...]:
        return (
            media.account_id,
            media.id,
            media.parent_id,
            media.media_type,
            media.media_product_type,
            media.timestamp,
            media.permalink,
            datetime.now(UTC),
            self._run_id,
        )

    def _error(self, account_id: str, object_id: str, stage: str, error: BaseException) -> Rows:
        self._counters.count_error(error)
        return Rows(Dataset.ERRORS, [error_row(account_id, object_id, stage, error, self._run_id)])


async def _drain(rows: ObjectReceiveStream[Rows], sink: ParquetSink) -> None:
    """The single sink task: gathers blocks into chunks and writes each chunk in a worker thread."""

    def write_all(blocks: list[Rows]) -> None:
        for block in blocks:
            sink.write(block)

    async with rows:
        chunk: list[Rows] = []
        size = 0
        async for block in rows:
            chunk.append(block)
            size += len(block.rows)
            if size >= SINK_CHUNK_ROWS:
                await anyio.to_thread.run_sync(write_all, chunk)
                chunk, size = [], 0
        if chunk:
            await anyio.to_thread.run_sync(write_all, chunk)


def _describe(error: BaseException) -> str:
    message = error.message if isinstance(error, GraphError) else str(error)
    return f"{type(error).__name__}: {message}"


__all__ = ["AccountFatal", "HarvestWindow", "new_run_id", "run_harvest"]
