"""run_harvest(): one task group, bounded streams between the stages, a report at the end.

    accounts -> K account tasks: listing -> media -> insights (M workers each) -> Rows -> sink

Every arrow is a bounded anyio memory object stream, so a slow disk fills the rows buffer, the
insights workers block on send and stop issuing HTTP: memory is bounded by buffer sizes, never by
the number of accounts or media. Producers close their send ends, so consumers end without
sentinels; an exception in any stage cancels the group and propagates, after the sink has committed
what it already holds.

Rows travel in units (`lake.checkpoint.Unit`: a media with its children and insights, an
account's own rows), so a checkpoint never splits one, and a rerun of the same config resumes the
job: done units are skipped, and the manifests say which files hold them.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from functools import partial

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from harvester.catalog import Login, object_fields, version_status
from harvester.config import Config
from harvester.graph.client import GraphClient
from harvester.graph.errors import AccountFatal, GraphError, NothingWorks, WrongAccount
from harvester.graph.gate import AppPermits, RateGate
from harvester.graph.instagram import confirm_account
from harvester.graph.token_store import expiring
from harvester.harvest.account_insights import AccountInsightsStage
from harvester.harvest.competitors import CompetitorsStage
from harvester.harvest.conditional import ConditionalAsks
from harvester.harvest.discovery import discover_into
from harvester.harvest.listing import ListingFields, fetch_profile, list_media, list_stories
from harvester.harvest.media_insights import MediaInsightsStage
from harvester.harvest.report import RunCounters, RunReport
from harvester.harvest.routing import Refusals
from harvester.harvest.rows import RunRows, Stage
from harvester.lake import layout
from harvester.lake.checkpoint import Checkpoint, JobState, Mode, SinkTask, Unit
from harvester.lake.fs import Lake, open_output
from harvester.lake.jobs import finish_job, prepare_job
from harvester.lake.lock import LakeLock, holding
from harvester.lake.sink import ParquetSink, SinkStatistics
from harvester.models import Account, Dataset, HarvestWindow, Media, Rows

log = logging.getLogger(__name__)

# Media of one account waiting for its insights workers: a page or two, enough to keep them busy
# while the next listing page arrives (times the accounts in flight, for the whole run).
MEDIA_BUFFER = 200
# Units waiting for the sink: small on purpose, it is what makes a slow disk slow the fetchers.
ROWS_BUFFER = 64
# Allocations between collections of the youngest GC generation during a harvest (see
# `_heap_frozen`); CPython's default is 700.
GC_YOUNG_THRESHOLD = 200_000


def new_run_id(now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


async def run_harvest(
    config: Config,
    *,
    window: HarvestWindow = HarvestWindow(),
    counters: RunCounters | None = None,
    run_id: str | None = None,
    mode: Mode = "backfill",
    now: datetime | None = None,
    snapshot_date: date | None = None,
    shard: bool = False,
    app_permits: AppPermits | None = None,
    lock_wait: float = 0.0,
) -> RunReport:
    """Harvest every configured account into the lake and return the run report (also written to
    `<output>/_runs/<run_id>.json`).

    The run resumes the unfinished job of the same config if there is one (`lake.checkpoint`).
    `now` (the job's clock) and `snapshot_date` (default: now's UTC date) exist for tests and
    replays; a resumed job keeps those of its first run. `shard` and `app_permits` are for runs
    side by side on one lake and one app budget (`harvest.ray_engine`): a shard settles nothing
    and touches no other job (`lake.jobs.prepare_job`), writes no report (its driver does),
    and takes app permits from outside. Unless a `shard` (its driver holds it), the run holds
    the lake's lock (`lake.lock`) throughout, waiting up to `lock_wait` seconds for another
    writer to finish before it refuses with `LakeLocked`.
    """
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    run_id = run_id or new_run_id(started)
    counters = counters or RunCounters()
    counters.accounts_total = len(config.accounts)
    clock = now or started
    if not (version := version_status(config.graph.api_version, clock.astimezone(UTC).date())).ok:
        log.warning("[graph] api_version: %s", version.message)
    _warn_expiring(config.accounts)
    lake = open_output(config.output)
    gate = None if app_permits is None else RateGate(config.limits, app_permits=app_permits)
    client = GraphClient(config.graph, config.limits, config.retry, gate=gate, counters=counters)
    stale = config.output.lock_stale_seconds
    lock = None if shard else LakeLock(lake, run_id=run_id, command="run", stale_seconds=stale)
    guard = lock.check if lock is not None else _unguarded
    run = _Outcome(config)
    try:
        async with holding(lock, wait=lock_wait), client:
            run.locked = True
            await _run(
                run,
                window,
                client,
                lake,
                counters,
                run_id,
                mode,
                clock,
                snapshot_date,
                shard=shard,
                guard=guard,
            )
    except BaseException as error:
        # A run that fails or is interrupted still reports beside the lake, with its status
        # (what it committed is kept, and the same command resumes it); unless it never had
        # the lake (refused its lock).
        if run.locked and not shard:
            report = run.report(client, counters, run_id, started, t0, error)
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                # Best effort: the run's own error is what propagates.
                await anyio.to_thread.run_sync(
                    lake.put, layout.run_report(run_id), report.to_json()
                )
        raise
    report = run.report(client, counters, run_id, started, t0)
    if not shard:  # a sharded run's driver writes the one report of the run
        await anyio.to_thread.run_sync(lake.put, layout.run_report(run_id), report.to_json())
    return report


@dataclass
class _Outcome:
    """What a run got to, for its report whichever way it ends: the config (discovery fills in
    its accounts), its job once begun, the sink's statistics once closed."""

    config: Config
    locked: bool = False
    job: JobState | None = None
    stats: SinkStatistics | None = None
    refusals: list[Refusals] | None = None

    def report(
        self,
        client: GraphClient,
        counters: RunCounters,
        run_id: str,
        started: datetime,
        t0: float,
        error: BaseException | None = None,
    ) -> RunReport:
        accounts = self.config.accounts
        failed = {a.id: _describe(e) for a in accounts if (e := client.failure(a.id))}
        stats = self.stats
        client_stats = client.statistics()
        # The job's error rows, including those of the runs it resumed.
        errors = self.job.rows.get(Dataset.ERRORS.value, 0) if self.job is not None else 0
        status, exit_code = "done", 3 if errors else 0
        if isinstance(error, (anyio.get_cancelled_exc_class(), KeyboardInterrupt)):
            status, exit_code = "interrupted", 130
        elif error is not None:
            status, exit_code = "failed", 5 if isinstance(error, NothingWorks) else 1
        return RunReport(
            run_id=run_id,
            api_version=self.config.graph.api_version,
            started_at=started,
            finished_at=datetime.now(UTC),
            wall_seconds=round(time.perf_counter() - t0, 3),
            accounts_ok=len(accounts) - len(failed),
            accounts_failed=len(failed),
            media_listed=counters.media_listed,
            rows={d.value: stats.rows.get(d.value, 0) if stats else 0 for d in Dataset},
            files=stats.files if stats else 0,
            errors_by_code=dict(counters.errors_by_code),
            requests=client_stats.requests,
            retries=client_stats.retries,
            exit_code=exit_code,
            failed_accounts=failed,
            status=status,
            failure=None if error is None or status == "interrupted" else _describe(error),
            uncatalogued_metrics=_uncatalogued(self.refusals or []),
            conditional_refused=counters.conditional_refused,
            conditional_accounts_stopped=counters.conditional_accounts_stopped,
        )


async def _run(
    run: _Outcome,
    window: HarvestWindow,
    client: GraphClient,
    lake: Lake,
    counters: RunCounters,
    run_id: str,
    mode: Mode,
    clock: datetime,
    snapshot_date: date | None,
    *,
    shard: bool,
    guard: Callable[[], None],
) -> None:
    """The run once it holds the lake: discovery, its job, the stages into the sink, the end of
    the job. Records in `run` how far it got."""
    config = run.config
    rows = RunRows(run_id=run_id, api_version=config.graph.api_version, counters=counters)
    reported: list[Rows] = []
    if config.discovery.token is not None:
        accounts, reported = await discover_into(client, config, rows)
        config = run.config = replace(config, accounts=accounts)
        counters.accounts_total = len(accounts)
    job = run.job = await anyio.to_thread.run_sync(
        partial(
            prepare_job,
            lake,
            config,
            window,
            mode=mode,
            run_id=run_id,
            clock=clock,
            snapshot_date=snapshot_date or clock.astimezone(UTC).date(),
            shard=shard,
            guard=guard,
        )
    )
    sink = ParquetSink(
        lake, run_id=run_id, snapshot_date=job.snapshot_date, settings=config.output, guard=guard
    )
    checkpoint = Checkpoint(
        lake, job, run_id, every_seconds=config.output.checkpoint_seconds, guard=guard
    )
    if reported and "discovery" not in job.other:
        discovery = Unit("discovery", ("discovery",), list(reported))
        await anyio.to_thread.run_sync(checkpoint.write, sink, [discovery])
    harvest = _Harvest(config, window, client, rows, counters, job)
    run.refusals = harvest.refusals
    drain = SinkTask(sink, checkpoint)
    try:
        with _heap_frozen(), _nothing_works_unwrapped():
            async with anyio.create_task_group() as tg:
                units_send, units_recv = anyio.create_memory_object_stream[Unit](ROWS_BUFFER)
                tg.start_soon(drain.run, units_recv)
                async with units_send:
                    await harvest.produce(units_send)
    finally:
        # Commit what was harvested even when the run fails or is cancelled (Ctrl-C), and
        # record it in a manifest so the next run resumes after it; after a sink failure,
        # drop what is uncommitted instead (it may hold part of a unit).
        with anyio.CancelScope(shield=True):
            run.stats = await anyio.to_thread.run_sync(drain.close)
    await anyio.to_thread.run_sync(partial(finish_job, lake, checkpoint, shard=shard))


@contextmanager
def _nothing_works_unwrapped() -> Iterator[None]:
    """Raise a NothingWorks from the task groups as itself: the run stops for that one reason,
    whichever tasks met it."""
    try:
        yield
    except BaseExceptionGroup as group:
        match, _ = group.split(NothingWorks)
        if match is None:
            raise
        first: BaseException = match
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None


@contextmanager
def _heap_frozen() -> Iterator[None]:
    """Freeze the objects alive before the harvest (modules, pyarrow, aiohttp, the config): they
    outlive it, and unfrozen, every full cycle collection walks them again; a backfill spends
    about a tenth of its client CPU there. The youngest generation is collected once
    `GC_YOUNG_THRESHOLD` more objects live than at the last collection, instead of 700: what a
    harvest holds at once (replies being read, rows waiting for the sink) stays below that, and
    what it frees is freed by refcount (answered errors hold no cycle: `graph.errors.detached`),
    so collections are rare instead of walking that working set again and again. At 10,000 a
    batched harvest of 100,000 media ran 157 collections, 3.7 s of its 29-30 s of CPU; now one,
    under 0.1 s, with the same peak RSS (~200 MB). The threshold still bounds cycles left for
    the collector (a few tens of MB at most)."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


class _Harvest:
    """The producing half of a run: account listing workers feeding insights workers."""

    def __init__(
        self,
        config: Config,
        window: HarvestWindow,
        client: GraphClient,
        rows: RunRows,
        counters: RunCounters,
        job: JobState,
    ) -> None:
        self._config = config
        self._window = window
        self._client = client
        self._rows = rows
        self._counters = counters
        self._job = job
        # Carousel children of media waiting for insights: they are committed with their parent.
        self._children: dict[str, list[Media]] = {}
        # The stages of each login the run has: the catalogue's login column decides their
        # metrics, so what one login lacks is never asked of the other's accounts.
        self._stages = {
            login: self._build_stages(login)
            for login in ("facebook", *{a.login for a in config.accounts} - {"facebook"})
        }
        self.refusals = [refusals for refusals, _, _ in self._stages.values()]
        _, self._media_stage, self._account_stage = self._stages["facebook"]
        # What the listing asks of each login's media (the newer count fields are Facebook's).
        self._fields = {
            login: ListingFields(object_fields(config.graph.api_version, login))
            for login in self._stages
        }
        self._competitors = CompetitorsStage(
            client,
            self._rows,
            media=config.harvest.competitor_media,
            page_size=config.harvest.media_page_size,
            profile_fields=object_fields(config.graph.api_version).user,
        )

    def _build_stages(
        self, login: Login
    ) -> tuple[Refusals, MediaInsightsStage, AccountInsightsStage]:
        config, client, rows, counters = self._config, self._client, self._rows, self._counters
        harvest = config.harvest
        refusals = Refusals(config.graph.api_version, login=login)
        media_stage = MediaInsightsStage(
            client,
            refusals,
            rows,
            breakdowns=harvest.breakdowns,
            batch_size=harvest.batch_size,
            requests_per_account=config.limits.max_requests_per_account,
            conditional=ConditionalAsks(
                counters,
                refusals_in_a_row=harvest.conditional_refusals_in_a_row,
                off=() if harvest.facebook_views else ("shared_to_facebook",),
            ),
        )
        account_stage = AccountInsightsStage(
            client,
            refusals,
            rows,
            api_version=config.graph.api_version,
            breakdowns=harvest.breakdowns,
            now=self._job.clock,
            batch_size=harvest.batch_size,
            workers=media_stage.workers_per_account,
            totals=harvest.account_totals,
            login=login,
        )
        return refusals, media_stage, account_stage

    def _windows(self, account: Account) -> tuple[HarvestWindow, HarvestWindow]:
        """The (media, account insights) windows: the run's, or the sweep's for this account."""
        swept = self._job.windows.get(account.id)
        if swept is None:
            return self._window, self._window
        since = datetime.fromisoformat
        return (
            HarvestWindow(since(swept["media_since"])),
            HarvestWindow(since(swept["insights_since"])),
        )

    async def produce(self, rows: MemoryObjectSendStream[Unit]) -> None:
        limits = self._config.limits
        accounts_send, accounts_recv = anyio.create_memory_object_stream[Account]()
        async with anyio.create_task_group() as tg:
            if competitors := self._config.competitors:
                # Beside the accounts: business discovery spends the app's budget, not theirs.
                tg.start_soon(
                    self._competitors.produce,
                    competitors,
                    self._config.accounts,
                    self._job.outcome,
                    rows.clone(),
                )
            async with accounts_recv:
                for _ in range(min(limits.max_accounts_in_flight, len(self._config.accounts))):
                    tg.start_soon(self._account_worker, accounts_recv.clone(), rows.clone())
            async with accounts_send:
                for account in self._config.accounts:
                    await accounts_send.send(account)

    async def _account_worker(
        self, accounts: ObjectReceiveStream[Account], rows: MemoryObjectSendStream[Unit]
    ) -> None:
        async with accounts, rows:
            async for account in accounts:
                await self._harvest_account(account, rows)
                self._counters.accounts_done += 1
                # As the run report counts it: closed by a token or permission error, or none
                # of its requests succeeded (the client knows both).
                if self._client.failure(account.id) is not None:
                    self._counters.accounts_failed += 1

    async def _harvest_account(self, account: Account, rows: MemoryObjectSendStream[Unit]) -> None:
        """Listing feeds this account's own insights workers, so an account that is throttled
        or blocked holds up its own workers only, never another account's.

        Its account insights run beside its listing and media insights, once its first media
        insights came back (a dead token then costs one call, not one per stage; and see
        `_account_insights`). Each piece of them is a unit of its own, sent when done; the
        account's own unit (listing errors, what completed) is sent after all its media and
        pieces, so an account counts as done only once everything it produced is committed.
        """
        if account.id in self._job.accounts:
            return  # done by an earlier run of this job
        media_send, media_recv = anyio.create_memory_object_stream[Media](MEDIA_BUFFER)
        blocks: list[Rows] = []
        info = {"listing_ok": False, "insights_ok": False}
        answered = anyio.Event()
        # Set once the account's first media insights POST (or request) came back (see
        # `_account_insights`) or its insights workers are done; without media insights, once
        # its listing was answered.
        room_known = anyio.Event() if self._config.harvest.media_insights else answered
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._insights_workers, account, media_recv, rows.clone(), room_known)
            tg.start_soon(self._account_insights, account, rows.clone(), room_known, info)
            async with media_send:
                try:
                    info["listing_ok"] = await self._list_account(
                        account, media_send, rows, blocks, answered
                    )
                finally:
                    answered.set()
            if info["listing_ok"]:  # a broken listing: the profile would fail alike, a call more
                await self._profile(account, blocks)
        self._raise_if_stopped()
        await rows.send(Unit("account", (account.id,), blocks, info))

    async def _profile(self, account: Account, blocks: list[Rows]) -> None:
        """The account's `accounts` row (or its error row) into its own unit, so a resumed job
        neither loses nor repeats it; asked after the listing, so a dead token costs one call."""
        if not self._config.harvest.profiles or self._client.closed(account.id):
            return
        try:
            profile = await fetch_profile(self._client, account, self._fields[account.login])
        except NothingWorks:
            raise
        except GraphError as error:
            blocks.append(self._rows.error_block(account.id, account.id, Stage.PROFILE, error))
            return
        blocks.append(self._rows.profiles([profile]))

    async def _list_account(
        self,
        account: Account,
        media_out: MemoryObjectSendStream[Media],
        rows: ObjectSendStream[Unit],
        blocks: list[Rows],
        answered: anyio.Event,
    ) -> bool:
        """List the account's media (listing errors into `blocks`), setting `answered` once a
        page came; say whether the listing completed (a sweep's cursor advances only then)."""
        harvest = self._config.harvest
        media_window, _ = self._windows(account)
        listing_ok = False
        try:
            if account.login == "instagram":
                await confirm_account(self._client, account)
            async for page in list_media(
                self._client,
                account,
                since=media_window.since,
                until=media_window.until,
                page_size=harvest.media_page_size,
                fields=self._fields[account.login],
            ):
                answered.set()
                await self._emit_media(account, page, media_out, rows)
            if harvest.stories:
                stories = await list_stories(self._client, account, self._fields[account.login])
                await self._emit_media(account, stories, media_out, rows)
            listing_ok = True
        except NothingWorks:
            raise
        except GraphError as error:
            # The account's listing broke off (or its token died); what was listed before stays
            # harvested.
            stage = Stage.IDENTITY if isinstance(error, WrongAccount) else Stage.LISTING
            blocks.append(self._rows.error_block(account.id, account.id, stage, error))
        return listing_ok

    async def _account_insights(
        self,
        account: Account,
        rows: ObjectSendStream[Unit],
        room_known: anyio.Event,
        info: dict[str, bool],
    ) -> None:
        """The account's account insights, piece by piece into `rows`, once its first media
        insights came back (or it had none to ask); `info["insights_ok"]` says whether they
        completed.

        Until a batch came back the gate knows the account's budget only as "at least 100 calls"
        (0 % after one listing call), so the room it gives is short of two batches: account
        insights sent then made the first media batch wait a round trip for room, on the
        account's critical path (account insights end well before its media anyway). After one
        batch the account's usage shows room for thousands, and both go side by side."""
        async with rows:
            await room_known.wait()
            if not self._config.harvest.account_insights or self._client.closed(account.id):
                return
            _, window = self._windows(account)
            _, _, account_stage = self._stages[account.login]
            info["insights_ok"] = await account_stage.harvest(
                account,
                window.since,
                window.until,
                done=self._job.outcome,
                send=partial(self._send_piece, rows),
            )
            self._raise_if_stopped()

    async def _emit_media(
        self,
        account: Account,
        page: Sequence[Media],
        media_out: MemoryObjectSendStream[Media],
        rows: ObjectSendStream[Unit],
    ) -> None:
        """Queue each media not done yet for insights, with its children (committed together).
        A page goes into the stream at once while it has room (`send` yields at every media), so
        the workers gather it into full batches."""
        children: dict[str, list[Media]] = {}
        for media in page:
            if media.parent_id is not None:
                children.setdefault(media.parent_id, []).append(media)
        for media in page:
            if media.is_child:
                continue
            self._counters.media_listed += 1
            if media.id in self._job.media:
                self._counters.media_done += 1  # done by an earlier run of this job
                continue
            family = children.get(media.id, [])
            if self._config.harvest.media_insights:
                self._children[media.id] = family
                try:
                    media_out.send_nowait(media)
                except anyio.WouldBlock:
                    await media_out.send(media)
            else:
                await rows.send(Unit("media", (media.id,), [self._rows.media((media, *family))]))

    async def _insights_workers(
        self,
        account: Account,
        media_in: MemoryObjectReceiveStream[Media],
        rows: MemoryObjectSendStream[Unit],
        room_known: anyio.Event,
    ) -> None:
        """The account's media insights workers; `room_known` set when they are done, if no
        media insights came back before (the listing found nothing to ask, or broke off)."""
        _, media_stage, _ = self._stages[account.login]
        # One worker at a time takes media from the stream: an idle worker is otherwise handed
        # a media of its own as each arrives, and a listed page goes out as one-media batches.
        gathering = anyio.Lock()
        async with rows, anyio.create_task_group() as tg, media_in:
            for _ in range(media_stage.workers_per_account):
                tg.start_soon(
                    self._insights_worker,
                    account,
                    media_in.clone(),
                    rows.clone(),
                    gathering,
                    room_known,
                )
        room_known.set()

    async def _insights_worker(
        self,
        account: Account,
        media_in: MemoryObjectReceiveStream[Media],
        rows: ObjectSendStream[Unit],
        gathering: anyio.Lock,
        room_known: anyio.Event,
    ) -> None:
        _, media_stage, _ = self._stages[account.login]
        async with media_in, rows:
            while True:
                async with gathering:
                    try:
                        media = await media_in.receive()
                    except anyio.EndOfStream:
                        return
                    group = await media_stage.gather(account, media, media_in)
                blocks = await media_stage.harvest(account, group, room_known.set)
                self._raise_if_stopped()
                await rows.send(self._media_unit(group, blocks))
                self._counters.media_done += len(group)

    async def _send_piece(
        self, rows: ObjectSendStream[Unit], unit_id: str, blocks: list[Rows], complete: bool
    ) -> None:
        """One finished piece of account insights to the sink, as its own unit."""
        self._raise_if_stopped()
        await rows.send(Unit("piece", (unit_id,), blocks, {"complete": complete}))

    def _raise_if_stopped(self) -> None:
        """Once nothing works, a stage's rows hold NothingWorks errors, not answers: drop them
        and stop the run (the stages file any GraphError as a row and go on)."""
        if (stop := self._client.stopped()) is not None:
            raise stop

    def _media_unit(self, group: Sequence[Media], blocks: list[Rows]) -> Unit:
        """The group's `media` rows (children included) and insight rows: one commit unit."""
        family = [m for media in group for m in (media, *self._children.pop(media.id, ()))]
        return Unit("media", tuple(m.id for m in group), [self._rows.media(family), *blocks])


def _uncatalogued(refusals: Sequence[Refusals]) -> dict[str, list[str]]:
    """The names Meta listed that the catalogue lacks, of every login's stages together."""
    merged: dict[str, set[str]] = {}
    for one in refusals:
        for scope, names in one.uncatalogued().items():
            merged.setdefault(scope, set()).update(names)
    return {scope: sorted(names) for scope, names in sorted(merged.items())}


def _warn_expiring(accounts: Sequence[Account]) -> None:
    """Instagram Login tokens die after 60 days unless refreshed: say so a week ahead."""
    for account, expires_at in expiring(accounts, datetime.now(UTC)):
        log.warning(
            "account %s: its Instagram Login token expires %s; run `harvester token refresh`",
            account.id,
            expires_at.strftime("%Y-%m-%d %H:%M UTC"),
        )


def _unguarded() -> None:
    """The guard of a shard's commits: its driver holds the lake's lock."""


def _describe(error: BaseException) -> str:
    message = error.message if isinstance(error, GraphError) else str(error)
    return f"{type(error).__name__}: {message}"


__all__ = ["AccountFatal", "HarvestWindow", "new_run_id", "run_harvest"]
