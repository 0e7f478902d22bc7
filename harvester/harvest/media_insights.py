"""Stage: one media -> its insight rows, or error rows saying why there are none.

Each media costs one request with every metric its type allows, plus one per breakdown metric
(Meta applies `breakdown` to every metric of a request, so those go separately). When Meta rejects
a metric (code 100 naming it), the media is asked again without it and the drop is remembered for
its kind for the rest of the run, so later media do not pay for the same error.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import anyio

from harvester.catalog import ApiVersion, MediaKind, media_kind
from harvester.graph.client import GraphClient
from harvester.graph.errors import GraphError, MetricUnsupported
from harvester.graph.replies import InsightValue, parse_insights
from harvester.harvest.report import RunCounters
from harvester.harvest.routing import Route, route
from harvester.models import Account, Dataset, Media, Rows


class NothingLeftToAsk(Exception):
    """Every metric of a media's kind was rejected by Meta while its request waited to go."""


class InsightsStage:
    """Shared by all insights workers of a run: the learned metric drops and failed accounts."""

    def __init__(
        self,
        client: GraphClient,
        *,
        api_version: str,
        run_id: str,
        counters: RunCounters,
        breakdowns: bool = True,
    ) -> None:
        self._client = client
        self._version_text = api_version
        self._version = ApiVersion.parse(api_version)
        self._run_id = run_id
        self._counters = counters
        self._breakdowns = breakdowns
        self._dropped: defaultdict[MediaKind, set[str]] = defaultdict(set)
        # Routes by (media_type, media_product_type, is_child), forgotten when a metric drops:
        # every listed media is routed up to three times (grouping, fitting, asking).
        self._routes: dict[tuple[str, str, bool], Route] = {}
        # Kinds whose (learned) metric set Meta has accepted once, and the media learning for
        # the others: see `wait_turn`.
        self._confirmed: set[MediaKind] = set()
        self._learners: dict[MediaKind, anyio.Event] = {}

    def route_for(self, media: Media) -> Route:
        key = (media.media_type, media.media_product_type, media.is_child)
        found = self._routes.get(key)
        if found is None:
            kind = media_kind(media.media_type, media.media_product_type)
            found = self._routes[key] = route(
                media.media_type,
                media.media_product_type,
                self._version,
                is_child=media.is_child,
                dropped=frozenset(self._dropped[kind]) if kind is not None else frozenset(),
            )
        return found

    async def wait_turn(self, media: Media) -> bool:
        """Wait until the media's kind is known to work, or make this media its learner (True).

        Meta names one rejected metric per error. Until one media of a kind got its insights,
        the kind's metric set may still hold metrics Meta retired, and every media asked at that
        time would pay for each of them. So the first media of a kind asks alone, sheds what Meta
        rejects, and the others of its kind wait for it and then go with the learned set."""
        while isinstance(turn := self.turn(media), anyio.Event):
            await turn.wait()
        return turn

    def turn(self, media: Media) -> bool | anyio.Event:
        """False: go (the kind is known to work). True: go, as the kind's learner (call `settle`
        when done). An Event: another media is learning for the kind; wait for it, then ask again.
        """
        kind = media_kind(media.media_type, media.media_product_type)
        if kind is None or kind in self._confirmed:
            return False
        learner = self._learners.get(kind)
        if learner is not None:
            return learner
        self._learners[kind] = anyio.Event()
        return True

    def settle(self, media: Media, *, worked: bool) -> None:
        """A learner is done: confirm its kind if it got insights, and wake those waiting."""
        kind = media_kind(media.media_type, media.media_product_type)
        if kind is None:
            return
        if worked:
            self._confirmed.add(kind)
        learner = self._learners.pop(kind, None)
        if learner is not None:
            learner.set()

    async def harvest(self, account: Account, media: Media) -> list[Rows]:
        """Rows for one (non-child) media: its insights, and an error row for each problem met."""
        learner = await self.wait_turn(media)
        blocks: list[Rows] = []
        try:
            blocks = await self._harvest(account, media)
        finally:
            if learner:
                worked = any(b.dataset is Dataset.MEDIA_INSIGHTS for b in blocks)
                self.settle(media, worked=worked)
        return blocks

    async def _harvest(self, account: Account, media: Media) -> list[Rows]:
        errors: list[tuple[Any, ...]] = []
        while True:
            stopped = self._client.gate.closed(account.id)
            if stopped is not None:
                errors.append(self.error_row(account.id, media.id, "media_insights", stopped))
                return [Rows(Dataset.ERRORS, errors)]
            planned = self.route_for(media)
            try:
                if not planned.metrics:
                    raise NothingLeftToAsk
                values = await self._fetch(account, media, planned)
            except NothingLeftToAsk:
                errors.append(self.nothing_left(account, media, adapted=bool(errors)))
                return [Rows(Dataset.ERRORS, errors)]
            except MetricUnsupported as error:
                errors.append(self.error_row(account.id, media.id, "metric_unsupported", error))
                if self.learn(media, error, planned):
                    continue  # each pass drops one requested metric, so this loop ends
                return [Rows(Dataset.ERRORS, errors)]
            except GraphError as error:
                errors.append(self.error_row(account.id, media.id, "media_insights", error))
                return [Rows(Dataset.ERRORS, errors)]
            return self.blocks(account, media, values, errors)

    def learn(self, media: Media, error: MetricUnsupported, planned: Route) -> bool:
        """Remember a metric Meta rejected for this media's kind; False if nothing can be
        dropped to adapt (the metric is unnamed, or was not asked)."""
        kind = media_kind(media.media_type, media.media_product_type)
        if kind is None or error.metric not in planned.metrics:
            return False
        self._dropped[kind].add(error.metric)
        self._routes.clear()
        return True

    def nothing_left(self, account: Account, media: Media, *, adapted: bool) -> tuple[Any, ...]:
        problem = NothingLeftToAsk(
            f"no insights exist for media_type={media.media_type} "
            f"media_product_type={media.media_product_type} at {self._version_text}"
            + (" once Meta's rejected metrics are left out" if adapted else "")
        )
        return self.error_row(account.id, media.id, "routing", problem)

    def blocks(
        self,
        account: Account,
        media: Media,
        values: list[InsightValue],
        errors: list[tuple[Any, ...]],
    ) -> list[Rows]:
        """The media's insight rows as one block: its values with the columns they share."""
        head = (account.id, media.id, media.media_type, media.media_product_type, media.timestamp)
        tail = (self._version_text, datetime.now(UTC), self._run_id)
        blocks = [Rows(Dataset.MEDIA_INSIGHTS, values, head, tail)]
        self._counters.insight_rows += len(values)
        if errors:
            blocks.append(Rows(Dataset.ERRORS, errors))
        return blocks

    async def _fetch(self, account: Account, media: Media, planned: Route) -> list[InsightValue]:
        path = f"{media.id}/insights"
        asked: list[str] = []

        def params() -> dict[str, str]:
            # Routed again when the gate lets the request go: metrics rejected while it queued
            # are not asked again.
            asked[:] = self.route_for(media).metrics
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

    def error_row(
        self, account_id: str | None, object_id: str | None, stage: str, error: BaseException
    ) -> tuple[Any, ...]:
        self._counters.count_error(error)
        return error_row(account_id, object_id, stage, error, self._run_id)


def error_row(
    account_id: str | None, object_id: str | None, stage: str, error: BaseException, run_id: str
) -> tuple[Any, ...]:
    """One `errors` dataset row; messages come from GraphError, which keeps them token-free."""
    if isinstance(error, GraphError):
        status, code, subcode = error.status, error.code, error.subcode
        message, trace = error.message, error.fbtrace_id
        if isinstance(error, MetricUnsupported) and error.metric:
            message = f"metric {error.metric} dropped: {message}"
    else:
        status = code = subcode = trace = None
        message = str(error)
    return (
        account_id,
        object_id,
        stage,
        status,
        code,
        subcode,
        message,
        trace,
        datetime.now(UTC),
        run_id,
    )
