"""The only code that builds dataset rows: how a row of each dataset looks, and the error stages.

Rows are tuples in the column order of `lake.schema.SCHEMAS`. Insight blocks carry the columns
their rows share as `head` and `tail` (see `models.Rows`), so a media's or an account's values
travel as short tuples and the sink repeats the shared columns once per block.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from harvester.graph.account_replies import AccountValue
from harvester.graph.errors import GraphError, MetricUnsupported
from harvester.graph.replies import InsightValue, number
from harvester.harvest.report import RunCounters
from harvester.models import Account, Dataset, Media, MediaDetails, Profile, Rows

__all__ = ["RunRows", "Stage", "error_row"]

# A media's details are its `media` columns in schema order (a NamedTuple): spread as they are.
_NO_DETAILS = MediaDetails()


class Stage(StrEnum):
    """Where a problem was met: the `stage` column of `errors`."""

    DISCOVERY = "discovery"
    LISTING = "listing"
    # An Instagram Login token's `/me` names another account than the configured id.
    IDENTITY = "identity"
    PROFILE = "profile"
    ROUTING = "routing"
    MEDIA_INSIGHTS = "media_insights"
    METRIC_UNSUPPORTED = "metric_unsupported"
    ACCOUNT_INSIGHTS = "account_insights"
    BREAKDOWN_UNSUPPORTED = "breakdown_unsupported"
    COMPETITORS = "competitors"  # business discovery of a competitor (object_id: its username)


def error_row(
    account_id: str | None,
    object_id: str | None,
    stage: Stage,
    error: BaseException,
    run_id: str,
) -> tuple[Any, ...]:
    """One `errors` row; messages come from GraphError, which keeps them token-free."""
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
        stage.value,
        status,
        code,
        subcode,
        message,
        trace,
        datetime.now(UTC),
        run_id,
    )


class RunRows:
    """The rows of one run, stamped with its id, API version and clock; each row it makes is
    counted in the run's live counters (insight rows, errors by code)."""

    def __init__(
        self, *, run_id: str, api_version: str, counters: RunCounters | None = None
    ) -> None:
        self.run_id = run_id
        self._version = api_version
        self._counters = counters or RunCounters()

    def media(self, media: Iterable[Media]) -> Rows:
        """`media` rows: listed objects, carousel children with their parent_id."""
        now = datetime.now(UTC)
        return Rows(
            Dataset.MEDIA,
            [
                (
                    m.account_id,
                    m.id,
                    m.parent_id,
                    m.media_type,
                    m.media_product_type,
                    m.timestamp,
                    m.permalink,
                    *(m.details or _NO_DETAILS),
                    m.source.value,
                    now,
                    self.run_id,
                )
                for m in media
            ],
        )

    def profiles(self, profiles: Iterable[Profile]) -> Rows:
        """`accounts` rows: one per account profile fetched."""
        now = datetime.now(UTC)
        return Rows(
            Dataset.ACCOUNTS,
            [
                (
                    p.account_id,
                    p.username,
                    p.name,
                    p.biography,
                    p.website,
                    p.followers_count,
                    p.follows_count,
                    p.media_count,
                    p.profile_picture_url,
                    p.source.value,
                    now,
                    self.run_id,
                )
                for p in profiles
            ],
        )

    def media_insights(self, account: Account, media: Media, values: list[InsightValue]) -> Rows:
        """One media's insight values as one block: the media's columns and the run's shared."""
        head = (account.id, media.id, media.media_type, media.media_product_type, media.timestamp)
        self._counters.insight_rows += len(values)
        return Rows(Dataset.MEDIA_INSIGHTS, values, head, self._tail())

    def media_harvested(
        self,
        account: Account,
        media: Media,
        values: list[InsightValue],
        errors: list[tuple[Any, ...]],
    ) -> list[Rows]:
        """A media that got its insights: its values, then the error rows met on the way (the
        metrics Meta refused before it answered)."""
        blocks = [self.media_insights(account, media, values)]
        if errors:
            blocks.append(self.errors(errors))
        return blocks

    def story_insights(
        self, account_id: str, media_id: str, values: Sequence[tuple[str, int | float | None]]
    ) -> list[tuple[Any, ...]]:
        """`media_insights` rows of a story's lifetime values as Meta's story_insights webhook
        delivers them (it says nothing of the media's type beyond STORY, nor of its timestamp).
        Whole rows, not a block: the receiver buffers events' rows until a flush. Each number is
        split into `value`/`value_float` exactly as a reply's (`graph.replies.number`)."""
        head = (account_id, media_id, None, "STORY", None)
        tail = self._tail()
        self._counters.insight_rows += len(values)
        return [
            (*head, metric, "lifetime", None, *number(metric, value), *tail)
            for metric, value in values
        ]

    def account_insights(self, account: Account, values: list[AccountValue]) -> Rows:
        """One reply's account values as a block: the account and the run's columns shared."""
        self._counters.insight_rows += len(values)
        return Rows(Dataset.ACCOUNT_INSIGHTS, values, (account.id,), self._tail())

    def error(
        self, account_id: str | None, object_id: str | None, stage: Stage, error: BaseException
    ) -> tuple[Any, ...]:
        self._counters.count_error(error)
        return error_row(account_id, object_id, stage, error, self.run_id)

    def error_block(
        self, account_id: str | None, object_id: str | None, stage: Stage, error: BaseException
    ) -> Rows:
        return Rows(Dataset.ERRORS, [self.error(account_id, object_id, stage, error)])

    @staticmethod
    def errors(rows: list[tuple[Any, ...]]) -> Rows:
        """A block of error rows made by `error`."""
        return Rows(Dataset.ERRORS, rows)

    def _tail(self) -> tuple[Any, ...]:
        return (self._version, datetime.now(UTC), self.run_id)
