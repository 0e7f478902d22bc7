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
"""

from __future__ import annotations

from collections.abc import Sequence
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


@dataclass(eq=False)  # jobs are compared by identity
class _Job:
    media: Media
    errors: list[tuple[Any, ...]] = field(default_factory=list)
    attempts: int = 0
    adapted: bool = False
    learner: bool = False  # the media its kind waits for (see Refusals.turn)
    worked: bool = False  # got its insights
    wait_for: anyio.Event | None = None


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
    ) -> None:
        self._client = client
        self._refusals = refusals
        self._rows = rows
        self.batch_size = batch_size  # the config holds it to Meta's cap
        self._breakdowns = breakdowns

    # The most ops one media costs: its main request and a breakdown request per breakdown metric
    # (a story has two: profile_activity and navigation).
    max_ops_per_media = 3

    def gather(
        self, account: Account, first: Media, media_in: MemoryObjectReceiveStream[Media]
    ) -> list[Media]:
        """The first media and whatever else is already waiting, up to one batch of ops."""
        group, ops = [first], self.ops_for(first)
        room = self.group_size(account)
        while ops + self.max_ops_per_media <= room:
            try:
                media = media_in.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream):
                break
            group.append(media)
            ops += self.ops_for(media)
        return group

    def ops_for(self, media: Media) -> int:
        """How many ops the media costs (its main request and one per breakdown)."""
        planned = self._refusals.route(media)
        return (1 + len(self._breakdown_ops(planned))) if planned.metrics else 0

    def group_size(self, account: Account) -> int:
        """The ops the next batch may hold: the batch size, cut to the room the gate sees."""
        return batch_room(self._client, account, self.batch_size)

    async def harvest(self, account: Account, media: Sequence[Media]) -> list[Rows]:
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
                retry, delay = await self._round(account, go, out)
                for job in go:
                    if job.learner and job not in retry:
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
        for index, job in enumerate(jobs):
            ops += self.ops_for(job.media)
            if ops > room and index > 0:
                return jobs[:index], jobs[index:]
        return jobs, []

    def _turns(self, jobs: list[_Job]) -> tuple[list[_Job], list[_Job]]:
        """Who goes this round: media of kinds known to work, and one learner per other kind."""
        go: list[_Job] = []
        waiting: list[_Job] = []
        for job in jobs:
            turn = True if job.learner else self._refusals.turn(job.media)
            if isinstance(turn, anyio.Event):
                job.wait_for = turn
                waiting.append(job)
            else:
                job.learner = turn
                go.append(job)
        return go, waiting

    async def _round(
        self, account: Account, jobs: list[_Job], out: list[Rows]
    ) -> tuple[list[_Job], float]:
        """One batch POST for `jobs`: the jobs to ask again, and how long to wait before."""
        ops: list[BatchOp] = []
        owners: list[tuple[_Job, Route, str | None]] = []
        for job in jobs:
            planned = self._refusals.route(job.media)
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
        if not ops:
            return [], 0.0
        try:
            results = await self._client.batch(account, ops)
        except GraphError as error:
            # The POST itself failed for good (retries spent): every job of it ends here.
            for job in {id(o[0]): o[0] for o in owners}.values():
                job.errors.append(self._error(account, job, error))
                out.append(self._rows.errors(job.errors))
            return [], 0.0
        return self._judge(account, owners, results, out)

    def _judge(
        self,
        account: Account,
        owners: list[tuple[_Job, Route, str | None]],
        results: list[Any],
        out: list[Rows],
    ) -> tuple[list[_Job], float]:
        jobs: dict[int, _Job] = {}
        values: dict[int, list[InsightValue]] = {}
        failed: dict[int, BaseException] = {}
        # Jobs to ask again, with the transient problem that made them (None: a metric was
        # dropped, which is adaptation, not a retry).
        again: dict[int, GraphError | None] = {}
        for (job, planned, breakdown_metric), result in zip(owners, results, strict=True):
            key = id(job)
            jobs[key] = job
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
        wait = 0.0
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
                found = values.get(key, [])
                out += self._rows.media_harvested(account, job.media, found, job.errors)
        return retry, wait

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
