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

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from harvester.catalog import AccountMetric, ApiVersion, load_catalog
from harvester.graph.account_replies import parse_account_reply
from harvester.graph.client import GraphClient
from harvester.graph.errors import (
    GraphError,
    InvalidRequest,
    MetricUnsupported,
)
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
    requests: list[AccountRequest]

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
) -> list[Piece]:
    """Every request for one account and window, as pieces: per window, oldest first, then the
    window-less one; within a piece, kinds in plan order and catalogue order within each kind."""
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
        for period in _ordered({p for m in totals for p in m.periods}):
            group = [m for m in totals if period in m.periods]
            daily = frozenset(m.name for m in series if period in m.periods)
            for day_start, day_stop in days:
                out += _total_requests(group, period, day_start, day_stop, breakdowns, daily)
        if out:
            pieces.append(Piece(start, stop, out))
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
        pieces.append(Piece(None, None, lifetime))
    return pieces


def plan_requests(
    metrics: Sequence[AccountMetric],
    since: datetime,
    until: datetime,
    *,
    now: datetime,
    breakdowns: bool = True,
) -> list[AccountRequest]:
    """Every request for one account and window (what `plan_pieces` plans, in its order)."""
    pieces = plan_pieces(metrics, since, until, now=now, breakdowns=breakdowns)
    return [request for piece in pieces for request in piece.requests]


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


class AccountInsightsStage:
    """Shared by every account of a run: the metrics Meta refused are not asked again."""

    def __init__(
        self,
        client: GraphClient,
        refusals: Refusals,
        rows: RunRows,
        *,
        api_version: str,
        breakdowns: bool = True,
        now: datetime | None = None,
    ) -> None:
        self._client = client
        self._refusals = refusals
        self._rows = rows
        self._metrics = load_catalog().account_metrics_for(ApiVersion.parse(api_version))
        self._breakdowns = breakdowns
        self._now = now

    def plan(self, since: datetime | None, until: datetime | None) -> list[Piece]:
        now = self._now or datetime.now(UTC)
        start, end = account_window(since, until, now=now)
        return plan_pieces(self._metrics, start, end, now=now, breakdowns=self._breakdowns)

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
        finished: its unit id, its row blocks (one per request), whether every request got its
        answer (refusals adapted to count as answered). True when every piece is complete,
        those of earlier runs included, so the account's account insights are for the window."""
        complete = True
        for piece in self.plan(since, until):
            unit = piece_id(account.id, piece)
            earlier = done(unit)
            if earlier is not None:
                complete &= earlier
                continue
            # The client closes an account on a token or permission error, whichever stage met it.
            if self._client.closed(account.id) is not None:
                return False
            blocks: list[Rows] = []
            finished = await self._run_piece(account, piece, blocks)
            await send(unit, blocks, finished)
            complete &= finished
        return complete and self._client.closed(account.id) is None

    async def _run_piece(self, account: Account, piece: Piece, out: list[Rows]) -> bool:
        """One piece's row blocks into `out`; False when a request of it failed or the account
        closed before its end (the rows it got are kept)."""
        # A day's requests all belong to one piece, so which totals are had is a piece's matter.
        totalled: set[tuple[datetime | None, str]] = set()
        complete = True
        for request in piece.requests:
            if self._client.closed(account.id) is not None:
                return False
            complete &= await self._run(account, request, totalled, out)
        return complete

    async def _run(
        self,
        account: Account,
        request: AccountRequest,
        totalled: set[tuple[datetime | None, str]],
        out: list[Rows],
    ) -> bool:
        """One planned request, adapted to what Meta refused so far; `totalled` holds the
        (window end, metric) pairs whose total row this account already has. False when it
        ended in an `account_insights` error."""
        while True:
            key = request.breakdown
            metrics = self._refusals.account_metrics(request.metrics, key)
            if not metrics:
                return True
            skip = frozenset(
                m for m in metrics if m in request.skip_totals or (request.until, m) in totalled
            )
            request = replace(request, metrics=metrics, skip_totals=skip)
            try:
                reply = await self._client.get(
                    f"{account.id}/insights", request.params(), account=account
                )
                values = parse_account_reply(
                    reply,
                    request.kind,
                    request.metrics,
                    period=request.period,
                    until=request.until,
                    timeframe=request.timeframe,
                    skip_totals=request.skip_totals,
                )
            except MetricUnsupported as error:
                news = self._refusals.drop(None, error, request.metrics)
                if news is None:
                    return self._failed(account, error, out)
                # Each pass drops one requested metric, so this loop ends.
                if news:
                    out.append(self._error(account, Stage.METRIC_UNSUPPORTED, error))
                continue
            except InvalidRequest as error:
                if request.kind != "total" or key is None:
                    return self._failed(account, error, out)
                return await self._refused_breakdown(account, request, totalled, error, out)
            except GraphError as error:
                return self._failed(account, error, out)
            if request.kind == "total":
                totalled.update((request.until, m) for m in request.metrics)
            if values:
                out.append(self._rows.account_insights(account, values))
            return True

    async def _refused_breakdown(
        self,
        account: Account,
        request: AccountRequest,
        totalled: set[tuple[datetime | None, str]],
        error: GraphError,
        out: list[Rows],
    ) -> bool:
        """Meta refused a breakdown request: find the metric that does not support the key.

        Several metrics are asked one by one (once per run: the refusal is remembered); a single
        metric's pair is dropped for the run with one `breakdown_unsupported` row, and its total is
        asked without the breakdown when no other request gave it and it is not one to skip (a
        series' metric, see `_total_requests`).
        """
        key = request.breakdown
        assert key is not None
        if len(request.metrics) > 1:
            complete = True
            for metric in request.metrics:
                single = replace(request, metrics=(metric,))
                complete &= await self._run(account, single, totalled, out)
            return complete
        metric = request.metrics[0]
        if self._refusals.drop_breakdown(metric, key):
            out.append(self._error(account, Stage.BREAKDOWN_UNSUPPORTED, error))
        if (request.until, metric) not in totalled and metric not in request.skip_totals:
            return await self._run(account, replace(request, breakdown=None), totalled, out)
        return True

    def _failed(self, account: Account, error: BaseException, out: list[Rows]) -> bool:
        out.append(self._error(account, Stage.ACCOUNT_INSIGHTS, error))
        return False

    def _error(self, account: Account, stage: Stage, error: BaseException) -> Rows:
        return self._rows.error_block(account.id, account.id, stage, error)


__all__ = [
    "AccountInsightsStage",
    "AccountRequest",
    "Piece",
    "SendPiece",
    "account_window",
    "ceil_day",
    "floor_day",
    "piece_id",
    "plan_pieces",
    "plan_requests",
    "split_window",
]
