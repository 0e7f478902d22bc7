"""Stage: media -> their insight rows, or error rows saying why there are none.

Each media costs one request with every metric its type allows, plus one per breakdown metric
(Meta applies `breakdown` to every metric of a request, so those go separately). This stage alone
decides how those requests travel: one GET each, or grouped into Graph batch POSTs
(`batched_insights`) when `[harvest] batch_size` > 1. When Meta rejects a metric (code 100 naming
it), the media is asked again without it and the drop is remembered for its kind for the rest of
the run (`routing.Refusals`), so later media do not pay for the same error. Metrics that exist
only for some media (`Route.conditional`) are asked after the media's normal request, one extra
request per condition, as `conditional.ConditionalAsks` allows; their expected refusal costs
nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from anyio.streams.memory import MemoryObjectReceiveStream

from harvester.graph.client import GraphClient
from harvester.graph.errors import GraphError, MetricUnsupported
from harvester.graph.replies import InsightValue, parse_insights
from harvester.harvest.batched_insights import BatchedInsights
from harvester.harvest.conditional import ConditionalAsks, Decision
from harvester.harvest.routing import NothingLeftToAsk, Refusals, Route
from harvester.harvest.rows import RunRows, Stage
from harvester.models import Account, Dataset, Media, Rows


class MediaInsightsStage:
    """Shared by all insights workers of a run."""

    def __init__(
        self,
        client: GraphClient,
        refusals: Refusals,
        rows: RunRows,
        *,
        breakdowns: bool = True,
        batch_size: int = 1,
        requests_per_account: int = 1,
        conditional: ConditionalAsks | None = None,
    ) -> None:
        self._client = client
        self._refusals = refusals
        self._rows = rows
        self._breakdowns = breakdowns
        # None: conditional metrics are never asked.
        self._conditional = conditional
        self._batched = (
            BatchedInsights(
                client,
                refusals,
                rows,
                batch_size=batch_size,
                breakdowns=breakdowns,
                conditional=conditional,
            )
            if batch_size > 1
            else None
        )
        # Each insights worker holds one request in flight. Batching, a worker's request carries
        # many media: fewer, fuller batches save round trips at the same in-flight count.
        self.workers_per_account = (
            requests_per_account if self._batched is None else max(1, requests_per_account // 2)
        )

    async def gather(
        self, account: Account, first: Media, media_in: MemoryObjectReceiveStream[Media]
    ) -> list[Media]:
        """The media one worker asks at once: the first, and, batching, whatever else is
        already waiting, up to one batch of ops."""
        if self._batched is None:
            return [first]
        return await self._batched.gather(account, first, media_in)

    async def harvest(
        self, account: Account, group: Sequence[Media], answered: Callable[[], None]
    ) -> list[Rows]:
        """Rows for a group of (non-child) media of one account: their insights, and an error
        row for each problem met. `answered()` is called as each request (or batch POST) of
        theirs comes back: from then on the gate knows the account's budget."""
        if self._batched is not None:
            return await self._batched.harvest(account, group, answered)
        out: list[Rows] = []
        for media in group:
            out += await self._harvest_one(account, media)
            answered()
        return out

    async def _harvest_one(self, account: Account, media: Media) -> list[Rows]:
        learner = await self._refusals.wait_turn(media)
        blocks: list[Rows] = []
        try:
            blocks = await self._ask(account, media)
        finally:
            if learner:
                worked = any(b.dataset is Dataset.MEDIA_INSIGHTS for b in blocks)
                self._refusals.settle(media, worked=worked)
        return blocks

    async def _ask(self, account: Account, media: Media) -> list[Rows]:
        errors: list[tuple[Any, ...]] = []
        while True:
            stopped = self._client.closed(account.id)
            if stopped is not None:
                errors.append(self._rows.error(account.id, media.id, Stage.MEDIA_INSIGHTS, stopped))
                return [self._rows.errors(errors)]
            planned = self._refusals.route(media)
            try:
                if not planned.metrics:
                    raise NothingLeftToAsk
                values = await self._fetch(account, media, planned)
                values += await self._ask_conditional(account, media, planned, errors)
            except NothingLeftToAsk:
                problem = self._refusals.nothing_left(media, adapted=bool(errors))
                errors.append(self._rows.error(account.id, media.id, Stage.ROUTING, problem))
                return [self._rows.errors(errors)]
            except MetricUnsupported as error:
                stage = Stage.METRIC_UNSUPPORTED
                errors.append(self._rows.error(account.id, media.id, stage, error))
                if self._refusals.drop(media, error, planned.metrics) is not None:
                    continue  # each pass drops one requested metric, so this loop ends
                return [self._rows.errors(errors)]
            except GraphError as error:
                errors.append(self._rows.error(account.id, media.id, Stage.MEDIA_INSIGHTS, error))
                return [self._rows.errors(errors)]
            return self._rows.media_harvested(account, media, values, errors)

    async def _fetch(self, account: Account, media: Media, planned: Route) -> list[InsightValue]:
        path = f"{media.id}/insights"
        asked: list[str] = []

        def params() -> dict[str, str]:
            # Routed again when the gate lets the request go: metrics rejected while it queued
            # are not asked again.
            asked[:] = self._refusals.route(media).metrics
            if not asked:
                raise NothingLeftToAsk
            return {"metric": ",".join(asked)}

        values = parse_insights(await self._client.get(path, params, account=account), asked)
        if self._breakdowns:
            for metric, key in planned.breakdowns:
                if metric not in asked:
                    continue
                reply = await self._client.get(
                    path, {"metric": metric, "breakdown": key}, account=account
                )
                values += parse_insights(reply, [metric], with_totals=False)
        return values

    async def _ask_conditional(
        self, account: Account, media: Media, planned: Route, errors: list[tuple[Any, ...]]
    ) -> list[InsightValue]:
        """The media's conditional metrics, one request per condition: none when it refuses
        them (expected: counted, no error row); another failure is an error row, and the
        media keeps the values of its normal request."""
        found: list[InsightValue] = []
        if self._conditional is None:
            return found
        asks = self._conditional
        for condition, names in planned.conditional:
            while (decision := asks.reserve(account.id, condition)) is Decision.WAIT:
                await asks.changed(account.id)
            if decision is Decision.SKIP:
                continue
            refused: bool | None = None
            try:
                reply = await self._client.get(
                    f"{media.id}/insights", {"metric": ",".join(names)}, account=account
                )
                found += parse_insights(reply, names)
                refused = False
            except GraphError as error:
                if asks.expected(error, names):
                    refused = True
                else:
                    errors.append(
                        self._rows.error(account.id, media.id, Stage.MEDIA_INSIGHTS, error)
                    )
            finally:
                asks.settle(account.id, condition, refused=refused)
        return found
