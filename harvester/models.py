"""Small frozen value types passed between the pipeline's stages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal


class Dataset(StrEnum):
    """The lake's datasets; their columns are `harvester.lake.schema`'s."""

    MEDIA = "media"
    MEDIA_INSIGHTS = "media_insights"
    ACCOUNT_INSIGHTS = "account_insights"
    ERRORS = "errors"


@dataclass(frozen=True)
class HarvestWindow:
    """Media timestamps to harvest: [since, until); None means unbounded. Also the account
    insights window, where no bounds mean the last 30 days (see `harvest.account_insights`)."""

    since: datetime | None = None
    until: datetime | None = None


class Secret:
    """A token or app secret. Its repr and str are masked so it cannot leak into logs or reports."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class Account:
    """One Instagram professional account: its id, where its token came from, and the token.

    `login` is how the app reaches it: "facebook" (Facebook Login, graph.facebook.com, through a
    Page) or "instagram" (Instagram Login, graph.instagram.com, an Instagram User token); the
    token works on its own login's host only. The token came from the environment variable
    `token_env`, or, when `token_file` is set, from that file (`token_env` is then "").
    """

    id: str
    token_env: str
    token: Secret
    login: Literal["facebook", "instagram"] = "facebook"
    token_file: str | None = None

    @property
    def token_source(self) -> str:
        """Where the token came from, for tables and messages: `env NAME` or `file PATH`."""
        return f"file {self.token_file}" if self.token_file is not None else f"env {self.token_env}"


@dataclass(frozen=True, slots=True)
class Media:
    """A media object as listed; `parent_id` is set only for carousel children."""

    account_id: str
    id: str
    media_type: str
    media_product_type: str
    timestamp: datetime | None
    permalink: str | None
    parent_id: str | None = None

    @property
    def is_child(self) -> bool:
        return self.parent_id is not None


@dataclass(frozen=True, slots=True)
class Rows:
    """A block of rows for one dataset: row i is `head + rows[i] + tail`, in schema column order.

    Stages emit blocks (one per media or per account request) instead of single rows so that the
    stream carries few large messages. `head` and `tail` hold the columns every row of the block
    shares (a media's ids and type, the run's version and clock): the stage builds no per-row
    tuples for them, and the sink repeats each once per block instead of transposing it per row.
    """

    dataset: Dataset
    rows: Sequence[tuple[Any, ...]]
    head: tuple[Any, ...] = ()
    tail: tuple[Any, ...] = ()
