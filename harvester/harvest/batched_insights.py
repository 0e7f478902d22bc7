"""The batched way of `media_insights`: a group of one account's media -> their insight rows,
via Graph batch POSTs.

A batch saves round trips and latency, not quota: Meta charges each op. Each media's ops (its main
request and one per breakdown) travel together and are judged together: the media's rows are kept
only when all its ops answered, so a media never ends half harvested. Per round:
- ops Meta ran out of time for (`null`) or that failed transiently are asked again in the next
  round, alone, after a backoff (the client's retry policy and run budget decide);
- a metric Meta rejects is dropped for the media's kind (`routing.Refusals`, as for single
  requests) and the media asked again without it;
- any other error ends the media with an error row; a dead token closes the account.

Account insights travel the same way (`harvest.account_batches`): what both need of a batch
round, how many ops the next POST may hold (`batch_room`) and which op results are asked again
after a backoff (`transient`), is decided here once.

A media's conditional metrics (`Route.conditional`, as `conditional.ConditionalAsks` allows) are
one more op beside its main ones, judged apart: their expected refusal costs the media nothing,
and once answered they are not asked again when the media's main ops are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from harvester.graph.batch import BatchOp, insights_op
from harvester.graph.client import GraphClient
from harvester.graph.errors import (
    GraphError,
    MalformedReply,
    MetricUnsupported,
    NoAnswer,
    Retriable,
)
from harvester.graph.replies import InsightValue, parse_insights
from harvester.harvest.conditional import ConditionalAsks, Decision
from harvester.harvest.routing import Refusals, Route
from harvester.harvest.rows import RunRows, Stage
from harvester.models import Account, Media, Rows


def batch_room(client: GraphClient, account: Account, batch_size: int) -> int:
    """The ops the next batch POST may hold: the batch size, cut to the room the gate sees
    (at least one, so a batch always goes)."""
    room = client.room(account.id)
    return batch_size if room is None else max(1, min(batch_size, room))


def transient(result: Any) -> GraphError | None:
    """The problem that makes an op worth asking again alone after a backoff: `null` (Meta ran
    out of time for it) or a retriable error; None for an answer or a final error."""
    if result is None:
        return NoAnswer()
    return result if isinstance(result, Retriable) else None


class _Posts:
    """An account's batch POSTs under way, and an event set each time one comes back."""

    __slots__ = ("in_flight", "returned")

    def __init__(self) -> None:
        self.in_flight = 0
        self.returned = anyio.Event()

    def back(self) -> None:
        self.in_flight -= 1
        self.returned.set()
        self.returned = anyio.Event()


@dataclass(eq=False)  # jobs are compared by identity
class _Job:
    media: Media
    errors: list[tuple[Any, ...]] = field(default_factory=list)
    attempts: int = 0
    adapted: bool = False
    learner: bool = False  # the media its kind waits for (see Refusals.turn)
    cleared: bool = False  # its kind is known to work (Refusals.turn said go; that holds)
    worked: bool = False  # got its insights
    wait_for: anyio.Event | None = None
    # The main ops' values once they all answered (then only conditional ops remain).
    values: list[InsightValue] | None = None
    # (condition, metrics) still to ask; None until the media is first routed.
    conditions: list[tuple[str, tuple[str, ...]]] | None = None
    extra: list[InsightValue] = field(default_factory=list)  # conditional metrics' values
    # Conditional ops' unexpected failures: error rows (and counted) only if the media is
    # harvested (a media that fails has its own; the conditional op went beside its main ops).
    extra_errors: list[BaseException] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Conditional:
    """Marks a batch op as one condition's metrics for its media."""

    condition: str
    metrics: tuple[str, ...]


# What each op of a batch is for: the media's main request (None), a breakdown (its metric), or
# a condition's metrics.
_Purpose = str | _Conditional | None


class BatchedInsights:
    """Harvests groups of media of one account with batch POSTs of at most `batch_size` ops."""

    def __init__(
        self,
        client: GraphClient,
        refusals: Refusals,
        rows: RunRows,
        *,
        batch_size: int,
        breakdowns: bool,
        conditional: ConditionalAsks | None = None,
    ) -> None:
        self._client = client
        self._refusals = refusals
        self._rows = rows
        self.batch_size = batch_size  # the config holds it to Meta's cap
        self._breakdowns = breakdowns
        self._conditional = conditional
        # Per account with POSTs under way (one event loop: no locks needed).
        self._posts: dict[str, _Posts] = {}

    # The most main ops one media costs: its main request and a breakdown request per breakdown
    # metric (a story has two: profile_activity and navigation).
    max_ops_per_media = 3

    async def gather(
        self, account: Account, first: Media, media_in: MemoryObjectReceiveStream[Media]
    ) -> list[Media]:
        """The first media and whatever else is already waiting, up to one batch of ops.

        While the gate's room is short of a batch and the account has POSTs under way, this
        waits for one to come back first: its usage raises the gate's estimate of the budget
        (a first reply of 0 % after one listing call means only "at least 100"), and media
        gather meanwhile, so the account sends a few full POSTs instead of a run of one-media
        ones. With none under way the room is what it is, and the batch is cut to it."""
        while self.group_size(account) < self.batch_size:
            posts = self._posts.get(account.id)
            if posts is None:
                break
            await posts.returned.wait()
        spare: dict[str, int | None] = {}
        group, ops = [first], self._cost(first, account, spare)
        room = self.group_size(account)
        while ops + self.max_ops_per_media + sum(n != 0 for n in spare.values()) <= room:
            try:
                media = media_in.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream):
                break
            group.append(media)
            ops += self._cost(media, account, spare)
        return group

    def _cost(self, media: Media, account: Account, spare: dict[str, int | None]) -> int:
        """How many ops the media costs in the next POST: its main request, one per breakdown,
        and one per condition whose asks may go now (`ConditionalAsks.spare`, counted down in
        `spare` as the batch is filled). Its other conditional ops go in a later POST."""
        planned = self._refusals.route(media)
        if not planned.metrics:
            return 0
        ops = 1 + len(self._breakdown_ops(planned))
        if self._conditional is None:
            return ops
        for condition, _ in planned.conditional:
            if condition not in spare:
                spare[condition] = self._conditional.spare(account.id, condition)
            left = spare[condition]
            if left is None or left > 0:
                ops += 1
                spare[condition] = None if left is None else left - 1
        return ops

    def _job_ops(self, job: _Job, account: Account, spare: dict[str, int | None]) -> int:
        if job.values is None:
            return self._cost(job.media, account, spare)
        return len(job.conditions or ())

    def group_size(self, account: Account) -> int:
        """The ops the next batch may hold: the batch size, cut to the room the gate sees."""
        return batch_room(self._client, account, self.batch_size)

    async def harvest(
        self, account: Account, media: Sequence[Media], answered: Callable[[], None]
    ) -> list[Rows]:
        """The media's rows; `answered()` is called as each of their POSTs comes back."""
        out: list[Rows] = []
        pending = [_Job(m) for m in media]
        try:
            while pending:
                stopped = self._client.closed(account.id)
                if stopped is not None:
                    for job in pending:
                        job.errors.append(self._error(account, job, stopped))
                        out.append(self._rows.errors(job.errors))
                    return out
                go, waiting = self._turns(pending)
                if not go:
                    # Every media here waits for a learner of another worker.
                    learner = waiting[0].wait_for
                    assert learner is not None
                    await learner.wait()
                    pending = waiting
                    continue
                go, later = self._fit(account, go)
                retry, delay = await self._round(account, go, out, answered)
                for job in go:
                    if job.learner and (job.worked or job not in retry):
                        job.learner = False
                        self._refusals.settle(job.media, worked=job.worked)
                pending = retry + later + waiting
                if delay:
                    await anyio.sleep(delay)
        finally:
            for job in pending:
                if job.learner:  # cancelled or failed mid-way: let another media learn
                    self._refusals.settle(job.media, worked=False)
        return out

    def _fit(self, account: Account, jobs: list[_Job]) -> tuple[list[_Job], list[_Job]]:
        """As many jobs as the gate has room for now (at least one); the rest go next round.
        Room may have shrunk while these media waited for a learner or a retry."""
        room, ops = self.group_size(account), 0
        spare: dict[str, int | None] = {}
        for index, job in enumerate(jobs):
            ops += self._job_ops(job, account, spare)
            if ops > room and index > 0:
                return jobs[:index], jobs[index:]
        return jobs, []

    def _turns(self, jobs: list[_Job]) -> tuple[list[_Job], list[_Job]]:
        """Who goes this round: media of kinds known to work, and one learner per other kind."""
        go: list[_Job] = []
        waiting: list[_Job] = []
        for job in jobs:
            # A waiting worker runs this at every wake-up: a kind once known to work stays so.
            turn = True if job.learner else False if job.cleared else self._refusals.turn(job.media)
            job.cleared = turn is False
            if isinstance(turn, anyio.Event):
                job.wait_for = turn
                waiting.append(job)
            else:
                job.learner = turn
                go.append(job)
        return go, waiting

    async def _round(
        self, account: Account, jobs: list[_Job], out: list[Rows], answered: Callable[[], None]
    ) -> tuple[list[_Job], float]:
        """One batch POST for `jobs`: the jobs to ask again, and how long to wait before."""
        ops: list[BatchOp] = []
        owners: list[tuple[_Job, Route, _Purpose]] = []
        routed: list[tuple[_Job, Route]] = []
        for job in jobs:
            planned = self._refusals.route(job.media)
            if job.conditions is None:
                job.conditions = list(planned.conditional) if self._conditional else []
            if job.values is None:
                if not planned.metrics:
                    problem = self._refusals.nothing_left(job.media, adapted=job.adapted)
                    job.errors.append(self._row(account, job, Stage.ROUTING, problem))
                    out.append(self._rows.errors(job.errors))
                    continue
                ops.append(insights_op(job.media.id, planned.metrics))
                owners.append((job, planned, None))
                for metric, key in self._breakdown_ops(planned):
                    ops.append(insights_op(job.media.id, [metric], breakdown=key))
                    owners.append((job, planned, metric))
            routed.append((job, planned))
        # Conditional ops go in the room the main ops leave (the gate's estimate: more ops would
        # land in a block), the rest in a later round.
        room = self.group_size(account)
        waiting: list[_Job] = []  # only their conditional ops are left, and those must wait
        held: set[str] = set()  # conditions that said WAIT: they do until a POST is judged
        for job, planned in routed:
            sent = len(ops)
            for condition, names in self._reserve(account, job, max(0, room - sent), held):
                ops.append(insights_op(job.media.id, names))
                owners.append((job, planned, _Conditional(condition, names)))
            if job.values is not None and len(ops) == sent:
                if job.conditions:
                    waiting.append(job)
                else:  # the account is done with its conditions meanwhile
                    out += self._harvested(account, job)
        if not ops:
            if waiting and self._conditional is not None:
                await self._conditional.changed(account.id)
            return waiting, 0.0
        posts = self._posts.get(account.id)
        if posts is None:
            posts = self._posts[account.id] = _Posts()
        posts.in_flight += 1
        try:
            results = await self._client.batch(account, ops)
        except BaseException as error:
            self._unreserve(account, owners)
            if not isinstance(error, GraphError):
                raise
            # The POST itself failed for good (retries spent): every job of it ends here.
            for job in {id(o[0]): o[0] for o in owners}.values():
                job.errors.append(self._error(account, job, error))
                out.append(self._rows.errors(job.errors))
            return [], 0.0
        finally:
            posts.back()
            if not posts.in_flight:
                del self._posts[account.id]
            answered()
        retry, wait = self._judge(account, owners, results, out)
        return retry + [j for j in waiting if j not in retry], wait

    def _reserve(
        self, account: Account, job: _Job, room: int, held: set[str]
    ) -> list[tuple[str, tuple[str, ...]]]:
        """Up to `room` of the job's conditional ops that may go now (each holds a place in
        `ConditionalAsks` until judged); the others stay in `job.conditions`. `held`: the
        conditions that said WAIT earlier in this round, not asked again (only a settled ask
        frees a place, and none settles while the round is built)."""
        asks = self._conditional
        if asks is None or job.conditions is None:
            return []
        going: list[tuple[str, tuple[str, ...]]] = []
        for item in list(job.conditions):
            if len(going) >= room:
                break
            if item[0] in held:
                continue
            decision = asks.reserve(account.id, item[0])
            if decision is Decision.SKIP:
                job.conditions.remove(item)
            elif decision is Decision.ASK:
                going.append(item)
            else:
                held.add(item[0])
        return going

    def _unreserve(self, account: Account, owners: list[tuple[_Job, Route, _Purpose]]) -> None:
        """The POST went wrong as a whole: give back the places of its conditional ops."""
        for _, _, purpose in owners:
            if isinstance(purpose, _Conditional) and self._conditional is not None:
                self._conditional.settle(account.id, purpose.condition, refused=None)

    def _conditional_result(
        self, account: Account, job: _Job, purpose: _Conditional, result: Any
    ) -> GraphError | None:
        """Judge one conditional op: its values or its expected refusal end the condition for
        the media; another error is an error row (the media keeps its other values); a transient
        one keeps it to ask again, returned for the retry delay."""
        assert self._conditional is not None
        asks, refused = self._conditional, None
        retriable = transient(result)
        try:
            if retriable is not None:
                return retriable
            if isinstance(result, GraphError):
                if asks.expected(result, purpose.metrics):
                    refused = True
                else:
                    job.extra_errors.append(result)
                return None
            try:
                job.extra += parse_insights(result, purpose.metrics)
            except MalformedReply as error:
                job.extra_errors.append(error)
                return None
            refused = False
            return None
        finally:
            asks.settle(account.id, purpose.condition, refused=refused)
            if retriable is None and job.conditions is not None:
                job.conditions.remove((purpose.condition, purpose.metrics))

    def _judge(
        self,
        account: Account,
        owners: list[tuple[_Job, Route, _Purpose]],
        results: list[Any],
        out: list[Rows],
    ) -> tuple[list[_Job], float]:
        wait = 0.0
        jobs: dict[int, _Job] = {}
        values: dict[int, list[InsightValue]] = {}
        failed: dict[int, BaseException] = {}
        # Jobs to ask again, with the transient problem that made them (None: a metric was
        # dropped, which is adaptation, not a retry).
        again: dict[int, GraphError | None] = {}
        for (job, planned, purpose), result in zip(owners, results, strict=True):
            key = id(job)
            jobs[key] = job
            if isinstance(purpose, _Conditional):
                retriable = self._conditional_result(account, job, purpose, result)
                if retriable is not None:
                    delay = self._client.retry_delay(job.attempts, retriable)
                    job.attempts += 1
                    if delay is not None:
                        wait = max(wait, delay)
                    else:  # given up: the media keeps its other values
                        job.extra_errors.append(retriable)
                        assert job.conditions is not None
                        job.conditions.remove((purpose.condition, purpose.metrics))
                continue
            breakdown_metric = purpose
            if (retriable := transient(result)) is not None:
                again[key] = retriable
            elif isinstance(result, MetricUnsupported):
                job.errors.append(self._row(account, job, Stage.METRIC_UNSUPPORTED, result))
                if self._refusals.drop(job.media, result, planned.metrics) is None:
                    failed.setdefault(key, result)
                elif again.get(key) is None:
                    job.adapted = True
                    again[key] = None
            elif isinstance(result, GraphError):
                failed.setdefault(key, result)
            else:
                metrics = [breakdown_metric] if breakdown_metric else list(planned.metrics)
                try:
                    parsed = parse_insights(result, metrics, with_totals=not breakdown_metric)
                except MalformedReply as error:
                    failed.setdefault(key, error)
                    continue
                values.setdefault(key, []).extend(parsed)
        retry: list[_Job] = []
        for key, job in jobs.items():
            problem: BaseException | None = failed.get(key)
            if problem is None and key in again:
                repeat = again[key]
                if repeat is None:
                    retry.append(job)
                    continue
                delay = self._client.retry_delay(job.attempts, repeat)
                job.attempts += 1
                if delay is not None:
                    wait = max(wait, delay)
                    retry.append(job)
                    continue
                problem = repeat
            if problem is not None:
                job.errors.append(self._error(account, job, problem))
                out.append(self._rows.errors(job.errors))
            else:
                job.worked = True
                if job.values is None:
                    job.values = values.get(key, [])
                if job.conditions:
                    retry.append(job)  # its conditional metrics are still to ask
                    continue
                out += self._harvested(account, job)
        return retry, wait

    def _harvested(self, account: Account, job: _Job) -> list[Rows]:
        """A media done: its values and conditional values, and every error row met."""
        found = (job.values or []) + job.extra
        errors = job.errors + [self._error(account, job, e) for e in job.extra_errors]
        return self._rows.media_harvested(account, job.media, found, errors)

    def _breakdown_ops(self, planned: Route) -> list[tuple[str, str]]:
        if not self._breakdowns:
            return []
        return [(m, k) for m, k in planned.breakdowns if m in planned.metrics]

    def _error(self, account: Account, job: _Job, error: BaseException) -> tuple[Any, ...]:
        return self._row(account, job, Stage.MEDIA_INSIGHTS, error)

    def _row(
        self, account: Account, job: _Job, stage: Stage, error: BaseException
    ) -> tuple[Any, ...]:
        return self._rows.error(account.id, job.media.id, stage, error)
