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

from harvester.catalog import ApiVersion, MediaKind, media_kind
from harvester.client import GraphClient
from harvester.errors import AccountFatal, GraphError, MetricUnsupported, Skippable
from harvester.models import Account, Media, Rows
from harvester.parsing import InsightValue, MalformedReply, parse_insights
from harvester.report import RunCounters
from harvester.routing import Route, route
from harvester.schema import Dataset


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

    def route_for(self, media: Media) -> Route:
        kind = media_kind(media.media_type, media.media_product_type)
        dropped = frozenset(self._dropped[kind]) if kind is not None else frozenset()
        return route(
            media.media_type,
            media.media_product_type,
            self._version,
            is_child=media.is_child,
            dropped=dropped,
        )

    async def harvest(self, account: Account, media: Media) -> list[Rows]:
        """Rows for one (non-child) media: its insights, and an error row for each problem met."""
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
                problem = NothingLeftToAsk(
                    f"no insights exist for media_type={media.media_type} "
                    f"media_product_type={media.media_product_type} at {self._version_text}"
                    + (" once Meta's rejected metrics are left out" if errors else "")
                )
                errors.append(self.error_row(account.id, media.id, "routing", problem))
                return [Rows(Dataset.ERRORS, errors)]
            except MetricUnsupported as error:
                errors.append(self.error_row(account.id, media.id, "metric_unsupported", error))
                kind = media_kind(media.media_type, media.media_product_type)
                if kind is None or error.metric not in planned.metrics:
                    return [Rows(Dataset.ERRORS, errors)]  # nothing we can drop to adapt
                # Each pass drops one requested metric, so this loop ends.
                self._dropped[kind].add(error.metric)
                continue
            except AccountFatal as error:
                errors.append(self.error_row(account.id, media.id, "media_insights", error))
                return [Rows(Dataset.ERRORS, errors)]
            except (Skippable, GraphError, MalformedReply) as error:
                errors.append(self.error_row(account.id, media.id, "media_insights", error))
                return [Rows(Dataset.ERRORS, errors)]
            blocks = [Rows(Dataset.MEDIA_INSIGHTS, self._insight_rows(account, media, values))]
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

    def _insight_rows(
        self, account: Account, media: Media, values: list[InsightValue]
    ) -> list[tuple[Any, ...]]:
        fetched_at = datetime.now(UTC)
        head = (account.id, media.id, media.media_type, media.media_product_type, media.timestamp)
        tail = (self._version_text, fetched_at, self._run_id)
        rows = [(*head, *value, *tail) for value in values]
        self._counters.insight_rows += len(rows)
        return rows

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
