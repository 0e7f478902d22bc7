"""Stage: one account and a window -> its `account_insights` rows, or error rows saying why not.

What is asked comes from the catalogue for the configured API version, planned into requests Meta
accepts: time series in windows of at most 30 days (Meta refuses longer ones) clipped to its ~2-year
retention; `total_value` metrics one day at a time (a window total is not a daily figure, and
daily rows are what reports sum); one request per breakdown key (Meta applies `breakdown` to every
metric of a request); demographics per breakdown and timeframe. Reply shapes become rows in
`graph.account_replies`.

Errors follow the media policy: a metric Meta rejects is dropped for the rest of the run (one
`metric_unsupported` error row) and the request is sent again without it; a token or permission
error stops the account; any other failure costs one error row for that request, and the stage
goes on.

Pieces: an account's requests are planned as committable pieces (`Piece`), one per 30-day window
(its series, online followers and daily totals) plus one for the window-less audience and
demographics requests. Each finished piece goes to the sink as its own unit, so a crash during a
two-year backfill (~3,650 requests per account) costs at most one epoch of them, and a resumed
job skips the pieces it committed (their ids derive from the job's clock and window, both kept
across resumes).

Calendar days: every window edge is a UTC midnight (the window's start is floored, its end
ceiled, retention clamps to the oldest full day Meta keeps), except an end at `now`, the open
day; so a daily total is a calendar day, and a backfill's days and a later sweep's (midnight
windows, `lake.sweep`) tile without a gap or an overlap.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import anyio

from harvester.catalog import AccountMetric, ApiVersion, Login, load_catalog
from harvester.graph.account_replies import parse_account_reply
from harvester.graph.batch import BatchOp
from harvester.graph.client import GraphClient
from harvester.graph.errors import (
    GraphError,
    InvalidRequest,
    MetricUnsupported,
    detached,
)
from harvester.harvest.account_batches import BatchRounds
from harvester.harvest.routing import Refusals
from harvester.harvest.rows import RunRows, Stage
from harvester.models import Account, Rows

# Meta refuses more than 30 days (2592000 s) between since and until.
MAX_SPAN = timedelta(days=30)
# Meta keeps account insights about two years; older windows only cost a request for nothing.
RETENTION = timedelta(days=730)
# The window used when the run gives none (the CLI's --since/--until are unset).
DEFAULT_WINDOW = timedelta(days=30)
DAY = timedelta(days=1)
# Windows whose plans a stage keeps (a sweep's accounts may each have their own window).
_PLANS_KEPT = 64
# Periods in the order they are requested; a catalogue period not listed here goes last.
_PERIOD_ORDER = ("day", "week", "days_28", "lifetime")

Kind = Literal["series", "online", "audience", "total", "demographics"]


@dataclass(frozen=True, slots=True)
class AccountRequest:
    """One `GET /{ig-user-id}/insights`: what it asks, and how its reply becomes rows."""

    kind: Kind
    metrics: tuple[str, ...]
    period: str
    since: datetime | None = None
    until: datetime | None = None
    breakdown: str | None = None
    timeframe: str | None = None
    # Metrics whose total row is not landed: a series' metric (set by the plan), or one whose total
    # another request of the same window already gave (set by the stage).
    skip_totals: frozenset[str] = frozenset()

    def params(self) -> dict[str, str]:
        params = {"metric": ",".join(self.metrics), "period": self.period}
        if self.kind in ("total", "demographics"):
            params["metric_type"] = "total_value"
        if self.since is not None:
            params["since"] = str(int(self.since.timestamp()))
        if self.until is not None:
            params["until"] = str(int(self.until.timestamp()))
        if self.breakdown is not None:
            params["breakdown"] = self.breakdown
        if self.timeframe is not None:
            params["timeframe"] = self.timeframe
        return params


def account_window(
    since: datetime | None, until: datetime | None, *, now: datetime
) -> tuple[datetime, datetime]:
    """The run's window for account insights: [since, until), defaulting to the last 30 days."""
    end = min(until, now) if until is not None else now
    start = since if since is not None else end - DEFAULT_WINDOW
    return start, end


def floor_day(moment: datetime) -> datetime:
    """The UTC midnight at or before `moment`."""
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, utc.day, tzinfo=UTC)


def ceil_day(moment: datetime) -> datetime:
    """The UTC midnight at or after `moment`."""
    start = floor_day(moment)
    return start if start == moment else start + DAY


def split_window(
    since: datetime, until: datetime, *, now: datetime, span: timedelta = MAX_SPAN
) -> list[tuple[datetime, datetime]]:
    """[since, until) widened to whole UTC days, clipped to retention and to now, cut into
    consecutive windows of <= span (a whole number of days) from the first midnight.

    The start is the midnight before `since`, but never before the first full day Meta still
    keeps (the midnight after now - RETENTION); the end is the midnight after `until`, or `now`
    when that is earlier (the open day). Consecutive windows share their edges: Meta counts a
    value in the window its end_time closes, so no day is asked twice and none is skipped.
    """
    start = max(floor_day(since), ceil_day(now - RETENTION))
    end = min(ceil_day(until), now)
    windows = []
    while start < end:
        stop = min(start + span, end)
        windows.append((start, stop))
        start = stop
    return windows


@dataclass(frozen=True, slots=True)
class Piece:
    """Requests that are committed together: one window's, or the window-less ones
    (`since`/`until` None). `key` names it within an account and job (`piece_id`)."""

    since: datetime | None
    until: datetime | None
    requests: tuple[AccountRequest, ...]

    @property
    def key(self) -> str:
        if self.since is None or self.until is None:
            return "lifetime"
        return f"{self.since.isoformat()}:{self.until.isoformat()}"


def piece_id(account_id: str, piece: Piece) -> str:
    """The piece's unit id, the same in every run of a job: `account_insights:<account>:<key>`."""
    return f"account_insights:{account_id}:{piece.key}"


def plan_pieces(
    metrics: Sequence[AccountMetric],
    since: datetime,
    until: datetime,
    *,
    now: datetime,
    breakdowns: bool = True,
    account_totals: str = "day",
) -> list[Piece]:
    """Every request for one account and window, as pieces: per window, oldest first, then the
    window-less one; within a piece, kinds in plan order and catalogue order within each kind.
    `account_totals`: "day" asks total_value metrics per UTC day, "window" once over each window."""
    series = [m for m in metrics if m.metric_type == "time_series"]
    maps = [m for m in metrics if m.metric_type == "lifetime_map"]
    online = any(m.name == "online_followers" for m in maps)
    totals = [m for m in metrics if m.metric_type == "total_value"]
    pieces = []
    for start, stop in split_window(since, until, now=now):
        out: list[AccountRequest] = []
        for period in _ordered({p for m in series for p in m.periods}):
            names = tuple(m.name for m in series if period in m.periods)
            out.append(AccountRequest("series", names, period, start, stop))
        if online:
            out.append(AccountRequest("online", ("online_followers",), "lifetime", start, stop))
        days = split_window(start, stop, now=now, span=DAY)
        if account_totals == "window":
            days = [(start, stop)]
        for period in _ordered({p for m in totals for p in m.periods}):
            group = [m for m in totals if period in m.periods]
            daily = frozenset(m.name for m in series if period in m.periods)
            for day_start, day_stop in days:
                out += _total_requests(group, period, day_start, day_stop, breakdowns, daily)
        if out:
            pieces.append(Piece(start, stop, tuple(out)))
    lifetime: list[AccountRequest] = []
    audience = tuple(m.name for m in maps if m.name != "online_followers")
    if audience:
        lifetime.append(AccountRequest("audience", audience, "lifetime"))
    demographics = [m for m in metrics if m.metric_type == "demographics"]
    keys = _ordered_unique(k for m in demographics for k in m.breakdowns)
    frames = _ordered_unique(t for m in demographics for t in m.timeframes)
    for key in keys:
        for frame in frames:
            names = tuple(
                m.name for m in demographics if key in m.breakdowns and frame in m.timeframes
            )
            if names:
                lifetime.append(
                    AccountRequest(
                        "demographics", names, "lifetime", breakdown=key, timeframe=frame
                    )
                )
    if lifetime:
        pieces.append(Piece(None, None, tuple(lifetime)))
    return pieces


def plan_requests(
    metrics: Sequence[AccountMetric],
    since: datetime,
    until: datetime,
    *,
    now: datetime,
    breakdowns: bool = True,
    account_totals: str = "day",
) -> list[AccountRequest]:
    """Every request for one account and window (what `plan_pieces` plans, in its order)."""
    pieces = plan_pieces(
        metrics, since, until, now=now, breakdowns=breakdowns, account_totals=account_totals
    )
    return [request for piece in pieces for request in piece.requests]


def window_period(since: datetime) -> str:
    """The period of a total over a window (`account_totals = "window"`): `window:<first UTC day>`,
    its end_time the window's end (a UTC midnight, or the run's clock for the open day)."""
    return f"window:{since.astimezone(UTC):%Y-%m-%d}"


def _total_requests(
    group: Sequence[AccountMetric],
    period: str,
    since: datetime,
    until: datetime,
    breakdowns: bool,
    series: frozenset[str] = frozenset(),
) -> list[AccountRequest]:
    """One day of total_value metrics: one plain request, then one per breakdown key.

    A metric with breakdowns gets its total from its first breakdown request (Meta sends the total
    beside the breakdown), so it is not asked without one; the stage keeps one total per day.
    A metric that is also a time series of the period (`series`: reach, whose day Meta gives
    both ways) lands only its breakdown rows: its plain total would sit beside the series' row
    of the same day (same metric and period, another end_time) and double a by-day sum. So it
    is never asked without a breakdown (that would land nothing).
    """
    if not breakdowns:
        names = tuple(m.name for m in group if m.name not in series)
        return [AccountRequest("total", names, period, since, until)] if names else []
    out = []
    plain = tuple(m.name for m in group if not m.breakdowns and m.name not in series)
    if plain:
        out.append(AccountRequest("total", plain, period, since, until))
    for key in _ordered_unique(k for m in group for k in m.breakdowns):
        names = tuple(m.name for m in group if key in m.breakdowns)
        skip = series.intersection(names)
        out.append(AccountRequest("total", names, period, since, until, key, skip_totals=skip))
    return out


def _ordered(periods: set[str]) -> list[str]:
    known = [p for p in _PERIOD_ORDER if p in periods]
    return known + sorted(periods.difference(_PERIOD_ORDER))


def _ordered_unique(items: Any) -> list[str]:
    return list(dict.fromkeys(items))


# Where a finished piece goes: (its unit id, its row blocks, whether it is complete).
SendPiece = Callable[[str, list[Rows], bool], Awaitable[None]]


@dataclass(eq=False)  # runs are compared by identity
class PieceRun:
    """One piece being harvested: its row blocks (one per answered request), the (window end,
    metric) pairs whose total row it has, and whether every request got its answer."""

    account: Account
    unit: str
    piece: Piece
    blocks: list[Rows] = field(default_factory=list)
    totalled: set[tuple[datetime | None, str]] = field(default_factory=set)
    complete: bool = True
    sent: bool = False


class AccountInsightsStage:
    """Shared by every account of a run: the metrics Meta refused are not asked again.

    With `batch_size` > 1 a piece's requests travel in Graph batch POSTs (`account_batches`),
    the pieces of an account sharing them, `workers` POSTs at a time; otherwise one GET each,
    `workers` pieces at a time. Either way each request's answer is judged here (`_answer`).
    """

    def __init__(
        self,
        client: GraphClient,
        refusals: Refusals,
        rows: RunRows,
        *,
        api_version: str,
        breakdowns: bool = True,
        now: datetime | None = None,
        batch_size: int = 1,
        workers: int = 1,
        totals: str = "day",
        login: Login = "facebook",
    ) -> None:
        self._client = client
        self._refusals = refusals
        self._rows = rows
        self._metrics = load_catalog().account_metrics_for(ApiVersion.parse(api_version), login)
        self._breakdowns = breakdowns
        self._now = now
        self._workers = max(1, workers)
        self._totals = totals
        self._plans: dict[tuple[datetime, datetime, datetime], list[Piece]] = {}
        self._batched: BatchRounds[PieceRun, AccountRequest] | None = None
        if batch_size > 1:
            self._batched = BatchRounds(
                client,
                batch_size=batch_size,
                workers=workers,
                prepare=self._prepare,
                op=lambda run, request: BatchOp(_path(run), tuple(request.params().items())),
                answer=self._answer,
            )

    def plan(self, since: datetime | None, until: datetime | None) -> list[Piece]:
        """The pieces of a window. Every account of a job asks the same window (a sweep's, each
        account's own): planned once, not per account (~2 ms a 30-day plan), as pieces are
        frozen; the last few windows are kept."""
        now = self._now or datetime.now(UTC)
        start, end = account_window(since, until, now=now)
        key = (start, end, now)
        pieces = self._plans.get(key)
        if pieces is None:
            pieces = plan_pieces(
                self._metrics,
                start,
                end,
                now=now,
                breakdowns=self._breakdowns,
                account_totals=self._totals,
            )
            if len(self._plans) >= _PLANS_KEPT:
                self._plans.clear()
            self._plans[key] = pieces
        return pieces

    async def harvest(
        self,
        account: Account,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        done: Callable[[str], bool | None],
        send: SendPiece,
    ) -> bool:
        """Run the account's pieces that no earlier run of the job committed (`done(unit id)`:
        None when not, else whether it was complete), handing each to `send` as soon as it is
        finished, in any order: its unit id, its row blocks (one per request), whether every
        request got its answer (refusals adapted to count as answered). A piece the account
        closed under is sent incomplete with what it got; one not begun is not sent. True when
        every piece is complete, those of earlier runs included, so the account's account
        insights are for the window."""
        complete = True
        runs: list[PieceRun] = []
        for piece in self.plan(since, until):
            unit = piece_id(account.id, piece)
            earlier = done(unit)
            if earlier is None:
                runs.append(PieceRun(account, unit, piece))
            else:
                complete &= earlier

        async def finished(run: PieceRun) -> None:
            run.sent = True
            await send(run.unit, run.blocks, run.complete)

        if self._batched is not None:
            if self._client.closed(account.id) is None:
                await self._batched.run(
                    account, [(run, run.piece.requests) for run in runs], finished
                )
        else:
            await self._run_pieces(account, runs, finished)
        for run in runs:
            if not run.sent and run.blocks:
                run.complete = False
                await finished(run)
        complete &= all(run.sent and run.complete for run in runs)
        return complete and self._client.closed(account.id) is None

    async def _run_pieces(
        self,
        account: Account,
        runs: list[PieceRun],
        finished: Callable[[PieceRun], Awaitable[None]],
    ) -> None:
        """One GET per request, `workers` pieces side by side, oldest first."""
        todo = iter(runs)

        async def worker() -> None:
            # Taking the next piece never awaits, so no two workers take the same one.
            for run in todo:
                # The client closes an account on a token or permission error, whichever stage
                # met it.
                if self._client.closed(account.id) is not None:
                    return
                if await self._run_piece(account, run):
                    await finished(run)

        async with anyio.create_task_group() as tg:
            for _ in range(min(self._workers, len(runs))):
                tg.start_soon(worker)

    async def _run_piece(self, account: Account, run: PieceRun) -> bool:
        """One piece's requests in order, each adaptation asked before the next request; False
        when the account closed before its end (the rows it got are kept)."""
        queue = deque(run.piece.requests)
        while queue:
            if self._client.closed(account.id) is not None:
                return False
            request = self._prepare(run, queue.popleft())
            if request is None:
                continue
            result: Any
            try:
                result = await self._client.get(_path(run), request.params(), account=account)
            except GraphError as error:
                result = detached(error)
            queue.extendleft(reversed(self._answer(run, request, result)))
        return True

    def _prepare(self, run: PieceRun, request: AccountRequest) -> AccountRequest | None:
        """The request as it goes now: without the metrics Meta refused so far (with its
        breakdown), and a total without a breakdown without the totals the piece has; None when
        nothing is left to ask."""
        metrics = self._refusals.account_metrics(request.metrics, request.breakdown)
        if request.kind == "total" and request.breakdown is None:
            metrics = tuple(m for m in metrics if (request.until, m) not in run.totalled)
        if not metrics:
            return None
        # `replace` builds a new frozen dataclass (µs each): only when something changed.
        return request if metrics == request.metrics else replace(request, metrics=metrics)

    def _answer(self, run: PieceRun, request: AccountRequest, result: Any) -> list[AccountRequest]:
        """One request's final result (its reply, or the `GraphError` it ended in) into the
        piece's rows; returns what to ask next in its place (the request without a metric Meta
        dropped, the metrics of a refused breakdown one by one, a total without its refused
        breakdown). Replies are taken in as they come: a total is kept from the first of them
        that has it."""
        if isinstance(result, MetricUnsupported):
            news = self._refusals.drop(None, result, request.metrics)
            if news is None:
                return self._failed(run, result)
            if news:
                run.blocks.append(self._error(run, Stage.METRIC_UNSUPPORTED, result))
            return [request]  # asked again without it: each pass drops one metric, so this ends
        if isinstance(result, InvalidRequest) and request.kind == "total" and request.breakdown:
            return self._refused_breakdown(run, request, result)
        if isinstance(result, GraphError):
            return self._failed(run, result)
        skip = frozenset(
            m
            for m in request.metrics
            if m in request.skip_totals or (request.until, m) in run.totalled
        )
        if skip != request.skip_totals:
            request = replace(request, skip_totals=skip)
        try:
            values = parse_account_reply(
                result,
                request.kind,
                request.metrics,
                period=request.period,
                until=request.until,
                timeframe=request.timeframe,
                skip_totals=request.skip_totals,
            )
        except GraphError as error:
            return self._failed(run, error)
        if request.kind == "total":
            run.totalled.update((request.until, m) for m in request.metrics)
            if self._totals == "window" and request.since is not None:
                label = window_period(request.since)
                values = [(v[0], label, *v[2:]) for v in values]
        if values:
            run.blocks.append(self._rows.account_insights(run.account, values))
        return []

    def _refused_breakdown(
        self, run: PieceRun, request: AccountRequest, error: GraphError
    ) -> list[AccountRequest]:
        """Meta refused a breakdown request: find the metric that does not support the key.

        Several metrics are asked one by one (once per run: the refusal is remembered); a single
        metric's pair is dropped for the run with one `breakdown_unsupported` row, and its total is
        asked without the breakdown (`_prepare` leaves it out once another request gave it) unless
        it is one to skip (a series' metric, see `_total_requests`).
        """
        key = request.breakdown
        assert key is not None
        if len(request.metrics) > 1:
            return [replace(request, metrics=(metric,)) for metric in request.metrics]
        metric = request.metrics[0]
        if self._refusals.drop_breakdown(metric, key):
            run.blocks.append(self._error(run, Stage.BREAKDOWN_UNSUPPORTED, error))
        return [] if metric in request.skip_totals else [replace(request, breakdown=None)]

    def _failed(self, run: PieceRun, error: BaseException) -> list[AccountRequest]:
        run.blocks.append(self._error(run, Stage.ACCOUNT_INSIGHTS, error))
        run.complete = False
        return []

    def _error(self, run: PieceRun, stage: Stage, error: BaseException) -> Rows:
        return self._rows.error_block(run.account.id, run.account.id, stage, error)


def _path(run: PieceRun) -> str:
    return f"{run.account.id}/insights"


__all__ = [
    "AccountInsightsStage",
    "AccountRequest",
    "Piece",
    "PieceRun",
    "SendPiece",
    "account_window",
    "ceil_day",
    "floor_day",
    "piece_id",
    "plan_pieces",
    "plan_requests",
    "split_window",
    "window_period",
]
