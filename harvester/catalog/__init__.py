"""The metric catalogue: loads `metrics.toml` once into validated, frozen objects.

The catalogue is data rather than code so that a Meta deprecation is a one-line edit reviewed
against the changelog, and so that `harvester metrics` can print exactly what routing uses.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any, Literal, cast

__all__ = [
    "AccountMetric",
    "ApiVersion",
    "Catalog",
    "CatalogError",
    "MediaKind",
    "MediaMetric",
    "MetricType",
    "Shape",
    "load_catalog",
    "media_kind",
    "parse_catalog",
]

Shape = Literal["values", "total_value"]
MetricType = Literal["time_series", "total_value", "lifetime_map", "demographics"]


# Meta's cap on the ops of one Graph batch request (the 51st fails the whole POST with code 100).
# A fact of the API like the metrics: the config bounds `[harvest] batch_size` by it and the batch
# codec refuses more.
BATCH_MAX_OPS = 50


class MediaKind(StrEnum):
    PHOTO = "PHOTO"
    VIDEO = "VIDEO"
    CAROUSEL = "CAROUSEL"
    REEL = "REEL"
    STORY = "STORY"


# (media_type, media_product_type) -> kind. A missing product type is FEED: media listed before Meta
# added `media_product_type` (and some older API versions) carry only `media_type`.
_KINDS: dict[tuple[str, str], MediaKind] = {
    ("IMAGE", "FEED"): MediaKind.PHOTO,
    ("VIDEO", "FEED"): MediaKind.VIDEO,
    ("CAROUSEL_ALBUM", "FEED"): MediaKind.CAROUSEL,
    ("VIDEO", "REELS"): MediaKind.REEL,
    ("IMAGE", "STORY"): MediaKind.STORY,
    ("VIDEO", "STORY"): MediaKind.STORY,
}


def media_kind(media_type: str, media_product_type: str | None) -> MediaKind | None:
    """The catalogue kind of a listed media, or None for anything we do not route (AD, unknown)."""
    return _KINDS.get((media_type, media_product_type or "FEED"))


_VERSION_RE = re.compile(r"v(\d{1,3})\.(\d{1,3})")


@dataclass(frozen=True, order=True, slots=True)
class ApiVersion:
    """A Graph API version such as v17.0; ordered so that ranges compare naturally."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> ApiVersion:
        match = _VERSION_RE.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(
                f"bad Graph API version {text!r}: expected 'vMAJOR.MINOR', e.g. 'v21.0'"
            )
        return cls(int(match[1]), int(match[2]))

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}"


def _in_range(version: ApiVersion, since: ApiVersion | None, until: ApiVersion | None) -> bool:
    return (since is None or since <= version) and (until is None or version < until)


@dataclass(frozen=True, slots=True)
class MediaMetric:
    """One catalogue entry: a media metric accepted for `kinds` in versions [since, until)."""

    name: str
    kinds: frozenset[MediaKind]
    since: ApiVersion | None
    until: ApiVersion | None
    removed_everywhere_on: date | None
    shape: Shape
    breakdown: str | None

    def accepted_in(self, version: ApiVersion) -> bool:
        return _in_range(version, self.since, self.until)


@dataclass(frozen=True, slots=True)
class AccountMetric:
    """One account-level metric: its periods, reply type, breakdowns and version range."""

    name: str
    periods: tuple[str, ...]
    metric_type: MetricType
    breakdowns: tuple[str, ...]
    timeframes: tuple[str, ...]
    since: ApiVersion | None
    until: ApiVersion | None
    removed_everywhere_on: date | None

    def accepted_in(self, version: ApiVersion) -> bool:
        return _in_range(version, self.since, self.until)


# eq=False keeps identity hashing: routing caches per catalogue, and hashing dozens of entries on
# every media would cost more than the lookup it saves.
@dataclass(frozen=True, eq=False)
class Catalog:
    """Every known media and account metric, in the file's order (which is the request order)."""

    media_metrics: tuple[MediaMetric, ...]
    account_metrics: tuple[AccountMetric, ...]

    def media_metrics_for(self, kind: MediaKind, version: ApiVersion) -> tuple[MediaMetric, ...]:
        return tuple(m for m in self.media_metrics if kind in m.kinds and m.accepted_in(version))

    def account_metrics_for(self, version: ApiVersion) -> tuple[AccountMetric, ...]:
        return tuple(m for m in self.account_metrics if m.accepted_in(version))


class CatalogError(ValueError):
    """The catalogue file is malformed; the message names the entry and key."""


_MEDIA_KEYS = frozenset(
    {"name", "kinds", "since", "until", "removed_everywhere_on", "shape", "breakdown"}
)
_ACCOUNT_KEYS = frozenset(
    {"name", "periods", "metric_type", "breakdowns", "timeframes", "since", "until"}
    | {"removed_everywhere_on"}
)
_SHAPES: frozenset[str] = frozenset({"values", "total_value"})
_METRIC_TYPES: frozenset[str] = frozenset(
    {"time_series", "total_value", "lifetime_map", "demographics"}
)


class _Entry:
    """Typed access to one TOML table, each failure naming `where.key`."""

    def __init__(self, where: str, table: Any, allowed: frozenset[str]) -> None:
        if not isinstance(table, dict):
            raise CatalogError(f"{where}: expected a table, got {type(table).__name__}")
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise CatalogError(f"{where}: unknown key(s) {', '.join(unknown)}")
        self.where = where
        self.table: dict[str, Any] = table

    def text(self, key: str, default: str | None = None) -> str:
        value = self.table.get(key, default)
        if not isinstance(value, str) or not value:
            raise CatalogError(f"{self.where}.{key}: expected a non-empty string, got {value!r}")
        return value

    def optional_text(self, key: str) -> str | None:
        return self.text(key) if key in self.table else None

    def texts(self, key: str, *, required: bool) -> tuple[str, ...]:
        value = self.table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise CatalogError(f"{self.where}.{key}: expected a list of strings, got {value!r}")
        if required and not value:
            raise CatalogError(f"{self.where}.{key}: must not be empty")
        if len(set(value)) != len(value):
            raise CatalogError(f"{self.where}.{key}: duplicate values in {value!r}")
        return tuple(value)

    def version(self, key: str) -> ApiVersion | None:
        if key not in self.table:
            return None
        try:
            return ApiVersion.parse(self.table[key])
        except ValueError as exc:
            raise CatalogError(f"{self.where}.{key}: {exc}") from None

    def versions(self) -> tuple[ApiVersion | None, ApiVersion | None]:
        since, until = self.version("since"), self.version("until")
        if since is not None and until is not None and since >= until:
            raise CatalogError(f"{self.where}: since {since} is not before until {until}")
        return since, until

    def day(self, key: str) -> date | None:
        value = self.table.get(key)
        if value is not None and (not isinstance(value, date) or hasattr(value, "hour")):
            raise CatalogError(f"{self.where}.{key}: expected a TOML date, got {value!r}")
        return value

    def choice(self, key: str, allowed: frozenset[str], default: str | None = None) -> str:
        value = self.text(key, default)
        if value not in allowed:
            raise CatalogError(f"{self.where}.{key}: {value!r} is not one of {sorted(allowed)}")
        return value


def _media_metric(entry: _Entry) -> MediaMetric:
    kinds = entry.texts("kinds", required=True)
    bad = [k for k in kinds if k not in MediaKind.__members__]
    if bad:
        raise CatalogError(f"{entry.where}.kinds: unknown kind(s) {bad}")
    since, until = entry.versions()
    return MediaMetric(
        name=entry.text("name"),
        kinds=frozenset(MediaKind(k) for k in kinds),
        since=since,
        until=until,
        removed_everywhere_on=entry.day("removed_everywhere_on"),
        shape=cast(Shape, entry.choice("shape", _SHAPES, "values")),
        breakdown=entry.optional_text("breakdown"),
    )


def _account_metric(entry: _Entry) -> AccountMetric:
    since, until = entry.versions()
    return AccountMetric(
        name=entry.text("name"),
        periods=entry.texts("periods", required=True),
        metric_type=cast(MetricType, entry.choice("metric_type", _METRIC_TYPES)),
        breakdowns=entry.texts("breakdowns", required=False),
        timeframes=entry.texts("timeframes", required=False),
        since=since,
        until=until,
        removed_everywhere_on=entry.day("removed_everywhere_on"),
    )


def _overlaps(a: MediaMetric | AccountMetric, b: MediaMetric | AccountMetric) -> bool:
    """Whether two half-open version ranges share a version (None = unbounded)."""
    a_starts_before_b_ends = b.until is None or a.since is None or a.since < b.until
    b_starts_before_a_ends = a.until is None or b.since is None or b.since < a.until
    return a_starts_before_b_ends and b_starts_before_a_ends


def _check_no_overlap(section: str, metrics: Sequence[MediaMetric | AccountMetric]) -> None:
    # Two live entries for one (kind, version) would route a metric twice and blur its shape.
    for i, a in enumerate(metrics):
        for j in range(i + 1, len(metrics)):
            b = metrics[j]
            if a.name != b.name or not _overlaps(a, b):
                continue
            if isinstance(a, MediaMetric) and isinstance(b, MediaMetric) and not a.kinds & b.kinds:
                continue
            raise CatalogError(f"{section}[{j}]: {b.name!r} overlaps {section}[{i}] in versions")


def parse_catalog(text: str) -> Catalog:
    """Build a catalogue from TOML text; raises CatalogError naming the bad entry and key."""
    try:
        doc: Mapping[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"catalogue is not valid TOML: {exc}") from None
    unknown = sorted(set(doc) - {"media", "account"})
    if unknown:
        raise CatalogError(f"unknown top-level key(s) {', '.join(unknown)}")
    sections: dict[str, list[Any]] = {}
    for section in ("media", "account"):
        tables = doc.get(section, [])
        if not isinstance(tables, list):
            raise CatalogError(f"{section}: expected an array of tables ([[{section}]])")
        sections[section] = tables
    media = tuple(
        _media_metric(_Entry(f"media[{i}]", t, _MEDIA_KEYS))
        for i, t in enumerate(sections["media"])
    )
    account = tuple(
        _account_metric(_Entry(f"account[{i}]", t, _ACCOUNT_KEYS))
        for i, t in enumerate(sections["account"])
    )
    _check_no_overlap("media", media)
    _check_no_overlap("account", account)
    return Catalog(media_metrics=media, account_metrics=account)


@cache
def load_catalog() -> Catalog:
    """The packaged catalogue, parsed and validated once per process."""
    text = resources.files("harvester.catalog").joinpath("metrics.toml").read_text(encoding="utf-8")
    return parse_catalog(text)
