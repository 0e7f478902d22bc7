"""The metric catalogue: loads `metrics.toml` once into validated, frozen objects.

The catalogue is data rather than code so that a Meta deprecation is a one-line edit reviewed
against the changelog, and so that `harvester metrics` can print exactly what routing uses.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any, Literal, cast

__all__ = [
    "EXPIRY_WARNING",
    "FIELD_NODES",
    "LOGINS",
    "AccountMetric",
    "ApiVersion",
    "Catalog",
    "CatalogError",
    "Login",
    "MediaKind",
    "MediaMetric",
    "MetricType",
    "ObjectField",
    "ObjectFields",
    "Shape",
    "VersionDates",
    "VersionStatus",
    "load_catalog",
    "load_fields",
    "media_kind",
    "object_fields",
    "parse_catalog",
    "parse_fields",
    "version_status",
]

Shape = Literal["values", "total_value"]
MetricType = Literal["time_series", "total_value", "lifetime_map", "demographics"]
# The two ways into Meta's API: Facebook Login (graph.facebook.com) and Instagram Login
# (graph.instagram.com). A few metrics exist with Facebook Login only.
Login = Literal["facebook", "instagram"]
LOGINS: tuple[Login, ...] = ("facebook", "instagram")


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
    logins: frozenset[Login] = frozenset(LOGINS)
    # A condition the media must meet (e.g. "shared_to_facebook"), else asking the metric fails
    # the whole request: never part of a media's normal request.
    conditional: str | None = None
    # True for a decimal metric (a percentage such as reels_skip_rate), False for an exact count.
    fractional: bool = False
    added_everywhere_on: date | None = None
    # False: known (and listed) but not asked by a harvest; see `asked` in metrics.toml.
    asked: bool = True

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
    logins: frozenset[Login] = frozenset(LOGINS)
    fractional: bool = False
    added_everywhere_on: date | None = None
    # False: known (and listed) but not asked by a harvest; see `asked` in metrics.toml.
    asked: bool = True

    def accepted_in(self, version: ApiVersion) -> bool:
        return _in_range(version, self.since, self.until)


@dataclass(frozen=True, slots=True)
class VersionDates:
    """When Meta released a Graph API version and when it stops serving it (None: not announced)."""

    version: ApiVersion
    released: date
    expires: date | None


# How long before a version's expiry a run and `harvester check` start warning.
EXPIRY_WARNING = timedelta(days=90)


@dataclass(frozen=True, slots=True)
class VersionStatus:
    """The verdict on a configured version at a date: `level` for code, `message` for people."""

    level: Literal["ok", "expiring", "expired", "unknown"]
    message: str

    @property
    def ok(self) -> bool:
        return self.level == "ok"


# eq=False keeps identity hashing: routing caches per catalogue, and hashing dozens of entries on
# every media would cost more than the lookup it saves.
@dataclass(frozen=True, eq=False)
class Catalog:
    """Every known media and account metric, in the file's order (which is the request order)."""

    media_metrics: tuple[MediaMetric, ...]
    account_metrics: tuple[AccountMetric, ...]
    versions: tuple[VersionDates, ...] = ()

    def media_metrics_for(
        self,
        kind: MediaKind,
        version: ApiVersion,
        login: Login | None = None,
        *,
        unasked: bool = False,
    ) -> tuple[MediaMetric, ...]:
        """The kind's metrics at `version` (conditional ones included), for `login` if given;
        those a harvest does not ask only with `unasked`."""
        return tuple(
            m
            for m in self.media_metrics
            if kind in m.kinds
            and m.accepted_in(version)
            and (login is None or login in m.logins)
            and (unasked or m.asked)
        )

    def account_metrics_for(
        self, version: ApiVersion, login: Login | None = None, *, unasked: bool = False
    ) -> tuple[AccountMetric, ...]:
        return tuple(
            m
            for m in self.account_metrics
            if m.accepted_in(version)
            and (login is None or login in m.logins)
            and (unasked or m.asked)
        )

    @property
    def fractional_metrics(self) -> frozenset[str]:
        """Names of the decimal metrics (media or account): their values go to `value_float`."""
        media = {m.name for m in self.media_metrics if m.fractional}
        return frozenset(media | {m.name for m in self.account_metrics if m.fractional})

    def version_dates(self, version: ApiVersion) -> VersionDates | None:
        return next((v for v in self.versions if v.version == version), None)


class CatalogError(ValueError):
    """The catalogue file is malformed; the message names the entry and key."""


_COMMON_KEYS = frozenset(
    {"name", "since", "until", "removed_everywhere_on", "added_everywhere_on", "login", "value"}
    | {"asked"}
)
_MEDIA_KEYS = _COMMON_KEYS | {"kinds", "shape", "breakdown", "conditional"}
_ACCOUNT_KEYS = _COMMON_KEYS | {"periods", "metric_type", "breakdowns", "timeframes"}
_VERSION_KEYS = frozenset({"name", "released", "expires"})
_VALUE_KINDS: frozenset[str] = frozenset({"count", "fraction"})
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

    def logins(self) -> frozenset[Login]:
        logins = self.texts("login", required=False) if "login" in self.table else LOGINS
        bad = [x for x in logins if x not in LOGINS]
        if bad or not logins:
            raise CatalogError(f"{self.where}.login: {logins!r} is not a list of {list(LOGINS)}")
        return frozenset(cast(tuple[Login, ...], logins))

    def flag(self, key: str, default: bool) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            raise CatalogError(f"{self.where}.{key}: expected true or false, got {value!r}")
        return value

    def fractional(self) -> bool:
        return self.choice("value", _VALUE_KINDS, "count") == "fraction"

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
        logins=entry.logins(),
        conditional=entry.optional_text("conditional"),
        fractional=entry.fractional(),
        added_everywhere_on=entry.day("added_everywhere_on"),
        asked=entry.flag("asked", True),
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
        logins=entry.logins(),
        fractional=entry.fractional(),
        added_everywhere_on=entry.day("added_everywhere_on"),
        asked=entry.flag("asked", True),
    )


def _version_dates(entry: _Entry) -> VersionDates:
    version = entry.version("name")
    released = entry.day("released")
    if version is None or released is None:
        raise CatalogError(f"{entry.where}: a version needs a name and a released date")
    expires = entry.day("expires")
    if expires is not None and expires <= released:
        raise CatalogError(f"{entry.where}: expires {expires} is not after released {released}")
    return VersionDates(version, released, expires)


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
            # An account metric may be asked both ways (reach: a time series and a total).
            pair = (a, b) if isinstance(a, AccountMetric) and isinstance(b, AccountMetric) else None
            if pair is not None and pair[0].metric_type != pair[1].metric_type:
                continue
            raise CatalogError(f"{section}[{j}]: {b.name!r} overlaps {section}[{i}] in versions")


def parse_catalog(text: str) -> Catalog:
    """Build a catalogue from TOML text; raises CatalogError naming the bad entry and key."""
    try:
        doc: Mapping[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"catalogue is not valid TOML: {exc}") from None
    unknown = sorted(set(doc) - {"media", "account", "version"})
    if unknown:
        raise CatalogError(f"unknown top-level key(s) {', '.join(unknown)}")
    sections: dict[str, list[Any]] = {}
    for section in ("media", "account", "version"):
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
    versions = tuple(
        _version_dates(_Entry(f"version[{i}]", t, _VERSION_KEYS))
        for i, t in enumerate(sections["version"])
    )
    _check_no_overlap("media", media)
    _check_no_overlap("account", account)
    if [v.version for v in versions] != sorted({v.version for v in versions}):
        raise CatalogError("version: entries must be unique and in ascending order")
    return Catalog(media_metrics=media, account_metrics=account, versions=versions)


@cache
def load_catalog() -> Catalog:
    """The packaged catalogue, parsed and validated once per process."""
    text = resources.files("harvester.catalog").joinpath("metrics.toml").read_text(encoding="utf-8")
    return parse_catalog(text)


def version_status(
    version: ApiVersion | str, today: date, catalog: Catalog | None = None
) -> VersionStatus:
    """Whether Meta still serves `version` on `today`, from the catalogue's version dates.

    Pure (the date is an argument), so a run's start, `harvester check` and tests share it. An
    expired version is not an error at Meta: it answers as the oldest live version instead, which
    may accept other metrics than the catalogue routes for the configured one, so say which.
    """
    catalog = catalog or load_catalog()
    parsed = ApiVersion.parse(version) if isinstance(version, str) else version
    dates = catalog.version_dates(parsed)
    oldest = catalog.versions[0] if catalog.versions else None
    if dates is None and oldest is not None and parsed < oldest.version and oldest.expires:
        expired = f"expired before {oldest.expires}"  # older than the oldest dated version
    elif dates is None:
        known = ", ".join(str(v.version) for v in catalog.versions)
        return VersionStatus("unknown", f"{parsed} is not a version the catalogue knows ({known})")
    elif dates.expires is None or today < dates.expires - EXPIRY_WARNING:
        return VersionStatus("ok", "ok")
    elif today < dates.expires:
        return VersionStatus("expiring", f"{parsed} expires within 90 days (on {dates.expires})")
    else:
        expired = f"expired on {dates.expires}"
    live = [
        v.version
        for v in catalog.versions
        if v.released <= today and (v.expires is None or today < v.expires)
    ]
    served = f"{live[0]}" if live else "?"
    return VersionStatus(
        "expired", f"{parsed} {expired} (Meta serves the oldest live version, {served}, instead)"
    )


# ---- object fields (fields.toml) ------------------------------------------------------------

FieldNode = Literal["media", "child", "story", "user"]
FIELD_NODES: tuple[FieldNode, ...] = ("media", "child", "story", "user")
_FIELD_KEYS = frozenset({"name", "on", "since", "until", "login", "added_everywhere_on"})


@dataclass(frozen=True, slots=True)
class ObjectField:
    """One entry of fields.toml: a field the harvest asks on the nodes `on`, in versions
    [since, until), with `logins`."""

    name: str
    on: frozenset[FieldNode]
    since: ApiVersion | None
    until: ApiVersion | None
    logins: frozenset[Login] = frozenset(LOGINS)
    added_everywhere_on: date | None = None

    def accepted_in(self, version: ApiVersion) -> bool:
        return _in_range(version, self.since, self.until)


@dataclass(frozen=True, slots=True)
class ObjectFields:
    """The fields a harvest asks of each node for one version and login, in the file's order:
    what `harvest.listing` joins into its `fields=` parameters."""

    media: tuple[str, ...]
    child: tuple[str, ...]
    story: tuple[str, ...]
    user: tuple[str, ...]


def _object_field(entry: _Entry) -> ObjectField:
    on = entry.texts("on", required=True)
    bad = [n for n in on if n not in FIELD_NODES]
    if bad:
        raise CatalogError(f"{entry.where}.on: unknown node(s) {bad}, expected {list(FIELD_NODES)}")
    since, until = entry.versions()
    return ObjectField(
        name=entry.text("name"),
        on=frozenset(cast(tuple[FieldNode, ...], on)),
        since=since,
        until=until,
        logins=entry.logins(),
        added_everywhere_on=entry.day("added_everywhere_on"),
    )


def parse_fields(text: str) -> tuple[ObjectField, ...]:
    """The entries of a fields.toml text; raises CatalogError naming the bad entry and key."""
    try:
        doc: Mapping[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"fields catalogue is not valid TOML: {exc}") from None
    unknown = sorted(set(doc) - {"field"})
    if unknown:
        raise CatalogError(f"unknown top-level key(s) {', '.join(unknown)}")
    tables = doc.get("field", [])
    if not isinstance(tables, list):
        raise CatalogError("field: expected an array of tables ([[field]])")
    entries = tuple(
        _object_field(_Entry(f"field[{i}]", t, _FIELD_KEYS)) for i, t in enumerate(tables)
    )
    seen: set[tuple[str, str]] = set()
    for i, f in enumerate(entries):
        for node in f.on:  # one entry per (field, node): a second would ask the field twice
            if (f.name, node) in seen:
                raise CatalogError(f"field[{i}]: {f.name!r} on {node!r} listed twice")
            seen.add((f.name, node))
    return entries


@cache
def load_fields() -> tuple[ObjectField, ...]:
    """The packaged fields.toml, parsed and validated once per process."""
    text = resources.files("harvester.catalog").joinpath("fields.toml").read_text(encoding="utf-8")
    return parse_fields(text)


@cache
def object_fields(api_version: ApiVersion | str, login: Login = "facebook") -> ObjectFields:
    """What a harvest asks of each node at `api_version` with `login`: the newer media count
    fields only with Facebook Login, children only what Meta serves on children."""
    version = ApiVersion.parse(api_version) if isinstance(api_version, str) else api_version
    live = [f for f in load_fields() if f.accepted_in(version) and login in f.logins]

    def on(node: FieldNode) -> tuple[str, ...]:
        return tuple(f.name for f in live if node in f.on)

    return ObjectFields(media=on("media"), child=on("child"), story=on("story"), user=on("user"))
