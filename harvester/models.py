"""Small frozen value types passed between the pipeline's stages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, NamedTuple


class Dataset(StrEnum):
    """The lake's datasets; their columns are `harvester.lake.schema`'s."""

    MEDIA = "media"
    MEDIA_INSIGHTS = "media_insights"
    ACCOUNT_INSIGHTS = "account_insights"
    ACCOUNTS = "accounts"
    ERRORS = "errors"


class Source(StrEnum):
    """Whose data a row of `media` or `accounts` is: an account the config owns (with a token and
    insights) or a competitor seen through business discovery (public fields only, no insights)."""

    OWNED = "owned"
    COMPETITOR = "competitor"


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


class MediaDetails(NamedTuple):
    """What the listing call says of a media beyond what routing needs: the `media` columns from
    `caption` to `total_views_count`, in schema order. None wherever Meta omits the field (a
    hidden like count, a withheld media URL, a field the version or login does not have).

    A NamedTuple, not a frozen dataclass: one is made per listed media, and a frozen dataclass
    of 15 fields costs ~1.5 us to build (an `object.__setattr__` per field) against ~0.2 us;
    its rows are the tuple itself, in column order."""

    caption: str | None = None
    like_count: int | None = None
    comments_count: int | None = None
    media_url: str | None = None
    thumbnail_url: str | None = None
    shortcode: str | None = None
    username: str | None = None
    is_comment_enabled: bool | None = None
    is_shared_to_feed: bool | None = None
    reposts_count: int | None = None
    saved_count: int | None = None
    shares_count: int | None = None
    total_like_count: int | None = None
    total_comments_count: int | None = None
    total_views_count: int | None = None


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
    details: MediaDetails | None = None
    source: Source = Source.OWNED

    @property
    def is_child(self) -> bool:
        return self.parent_id is not None


@dataclass(frozen=True, slots=True)
class Profile:
    """An account's public profile as Meta reports it at fetch time: one `accounts` row. None
    wherever Meta omits the field (an account without a website or a biography)."""

    account_id: str
    source: Source
    username: str | None = None
    name: str | None = None
    biography: str | None = None
    website: str | None = None
    followers_count: int | None = None
    follows_count: int | None = None
    media_count: int | None = None
    profile_picture_url: str | None = None


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
