"""Routing: which insight metrics to ask for one media, at one API version, given what Meta refused.

`route` is pure and cached: the answer depends only on the media's kind, the API version, the
metrics learned refused during the run, and the catalogue. `Refusals` is the run's memory of what
Meta refused (media metrics per kind, account metrics, account breakdowns), shared by every stage,
so that no stage pays twice for one error and "drop the metric and ask again" is decided here once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import anyio

from harvester.catalog import (
    LOGINS,
    ApiVersion,
    Catalog,
    Login,
    MediaKind,
    MediaMetric,
    load_catalog,
    media_kind,
)
from harvester.graph.errors import MetricUnsupported
from harvester.harvest.probe import ACCOUNT_SCOPE, compare
from harvester.models import Media

__all__ = [
    "EMPTY_ROUTE",
    "NothingLeftToAsk",
    "Refusals",
    "Route",
    "metrics_markdown",
    "metrics_table",
    "route",
]

# Account insights are one scope of refusals, beside the media kinds.
ACCOUNT: Literal["account"] = "account"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Route:
    """The insight requests for one media.

    `metrics` is every routed metric, asked in one request (`metric=a,b,c`); breakdown metrics are
    included, as without `breakdown` they reply with their total. Each `(metric, key)` in
    `breakdowns` is one extra request `metric=<metric>&breakdown=<key>` for the split, separate
    because Meta rejects a breakdown request that mixes in metrics without that breakdown.
    `conditional` holds, per condition (e.g. "shared_to_facebook"), the metrics that exist only
    for media meeting it: never in `metrics`, since asking one for a media that does not meet
    the condition fails the whole request; a stage may ask them apart, one request per condition.
    """

    metrics: tuple[str, ...]
    breakdowns: tuple[tuple[str, str], ...]
    conditional: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.metrics)


EMPTY_ROUTE = Route(metrics=(), breakdowns=())

# Distinct (kind, version, dropped) keys in one run are few: a handful of kinds, one version, and
# drop sets that only grow. 1024 bounds memory against a pathological stream of drop sets.
_CACHE_SIZE = 1024


@lru_cache(maxsize=64)
def _version(api_version: str) -> ApiVersion:
    return ApiVersion.parse(api_version)


@lru_cache(maxsize=_CACHE_SIZE)
def _route_kind(
    catalog: Catalog, kind: MediaKind, version: ApiVersion, dropped: frozenset[str], login: Login
) -> Route:
    metrics: list[str] = []
    breakdowns: list[tuple[str, str]] = []
    conditional: dict[str, list[str]] = {}
    for metric in catalog.media_metrics_for(kind, version, login):
        if metric.name in dropped:
            continue
        if metric.conditional is not None:
            conditional.setdefault(metric.conditional, []).append(metric.name)
            continue
        metrics.append(metric.name)
        if metric.breakdown is not None:
            breakdowns.append((metric.name, metric.breakdown))
    return Route(
        metrics=tuple(metrics),
        breakdowns=tuple(breakdowns),
        conditional=tuple((c, tuple(names)) for c, names in conditional.items()),
    )


def route(
    media_type: str,
    media_product_type: str | None,
    api_version: ApiVersion | str,
    *,
    is_child: bool = False,
    dropped: frozenset[str] = frozenset(),
    catalog: Catalog | None = None,
    login: Login = "facebook",
) -> Route:
    """The requests for one media; empty for carousel children and for kinds we do not route.

    `dropped` holds the metrics Meta rejected earlier in the run for this (kind, version); the date
    based removals in the catalogue are deliberately not applied here (see metrics.toml).
    `login` leaves out the metrics that do not exist with that login (Instagram Login lacks a few).
    Raises ValueError only for a malformed `api_version` string.
    """
    if is_child:
        return EMPTY_ROUTE
    kind = media_kind(media_type, media_product_type)
    if kind is None:
        return EMPTY_ROUTE
    version = _version(api_version) if isinstance(api_version, str) else api_version
    if not isinstance(dropped, frozenset):  # a plain set would be unhashable for the cache
        dropped = frozenset(dropped)
    return _route_kind(catalog or load_catalog(), kind, version, dropped, login)


class NothingLeftToAsk(Exception):
    """Every metric of a media's kind was refused by Meta (or none is routed to it)."""


class Refusals:
    """What Meta refused during this run, and so what the run no longer asks.

    Meta names one rejected metric per error. Until one media of a kind got its insights, the
    kind's metric set may still hold metrics Meta retired, and every media asked at that time
    would pay for each of them. So the first media of a kind asks alone as its *learner*, sheds
    what Meta rejects, and the others of its kind wait for it (`turn`, `settle`).
    """

    def __init__(self, api_version: str, *, login: Login = "facebook") -> None:
        self._version_text = api_version
        self._version = ApiVersion.parse(api_version)
        self._login: Login = login
        self._dropped: defaultdict[MediaKind | Literal["account"], set[str]] = defaultdict(set)
        # (metric, breakdown key) pairs of account insights Meta refused.
        self._breakdowns: set[tuple[str, str]] = set()
        # Routes by (media_type, media_product_type, is_child), forgotten when a metric drops:
        # every listed media is routed up to three times (grouping, fitting, asking).
        self._routes: dict[tuple[str, str, bool], Route] = {}
        self._confirmed: set[MediaKind] = set()
        self._learners: dict[MediaKind, anyio.Event] = {}
        # Per kind (or ACCOUNT): names Meta listed in a rejection that the catalogue lacks. Never
        # asked (a run asks only what the catalogue knows); named in the run report.
        self._uncatalogued: defaultdict[str, set[str]] = defaultdict(set)

    def route(self, media: Media) -> Route:
        """What to ask for one media now."""
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
                login=self._login,
            )
        return found

    def drop(
        self, media: Media | None, error: MetricUnsupported, asked: Collection[str]
    ) -> bool | None:
        """Meta refused a metric of a request for `media` (None: account insights): remember it
        for the media's kind (or the account metrics), so it is not asked again this run.

        None: nothing can be dropped to adapt (the metric is unnamed, was not asked, or the media
        has no kind), so asking again would fail the same way. Otherwise ask again without it:
        True when this refusal is news, False when another request learned it meanwhile.
        """
        scope: MediaKind | Literal["account"] | None = ACCOUNT
        if media is not None:
            scope = media_kind(media.media_type, media.media_product_type)
        if scope is not None and error.valid is not None:
            self._note_listed(ACCOUNT_SCOPE if scope == ACCOUNT else str(scope), error.valid)
        if scope is None or error.metric is None or error.metric not in asked:
            return None
        dropped = self._dropped[scope]
        if error.metric in dropped:
            return False
        dropped.add(error.metric)
        self._routes.clear()
        return True

    def _note_listed(self, scope: str, listed: tuple[str, ...]) -> None:
        lacks = compare(scope, listed, self._version, self._login, load_catalog()).missing
        known = self._uncatalogued[scope]
        if news := [name for name in lacks if name not in known]:
            known.update(news)
            log.warning(
                "Meta lists %s metric(s) the catalogue lacks at %s: %s (not asked; "
                "`harvester metrics --probe` compares the whole catalogue)",
                scope,
                self._version_text,
                ", ".join(news),
            )

    def uncatalogued(self) -> dict[str, list[str]]:
        """Per kind (or ACCOUNT), the names Meta listed in a rejection this run that the
        catalogue lacks, sorted: for the run report."""
        return {
            scope: sorted(names) for scope, names in sorted(self._uncatalogued.items()) if names
        }

    def account_metrics(self, metrics: Collection[str], breakdown: str | None) -> tuple[str, ...]:
        """The account metrics of a request still worth asking, with `breakdown` if any."""
        dropped = self._dropped[ACCOUNT]
        return tuple(
            m
            for m in metrics
            if m not in dropped and (breakdown is None or (m, breakdown) not in self._breakdowns)
        )

    def drop_breakdown(self, metric: str, breakdown: str) -> bool:
        """Meta refused `breakdown` for an account metric; True when this is news (accounts run
        concurrently and may all meet the refusal at once)."""
        if (metric, breakdown) in self._breakdowns:
            return False
        self._breakdowns.add((metric, breakdown))
        return True

    def nothing_left(self, media: Media, *, adapted: bool) -> NothingLeftToAsk:
        return NothingLeftToAsk(
            f"no insights exist for media_type={media.media_type} "
            f"media_product_type={media.media_product_type} at {self._version_text}"
            + (" once Meta's rejected metrics are left out" if adapted else "")
        )

    async def wait_turn(self, media: Media) -> bool:
        """Wait until the media's kind is known to work (False), or make this media its learner
        (True: call `settle` when done)."""
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


def _describe(metric: MediaMetric) -> str:
    parts: list[str] = [metric.shape]
    if metric.breakdown is not None:
        parts.append(f"breakdown={metric.breakdown}")
    if metric.fractional:
        parts.append("fraction")
    if metric.conditional is not None:
        parts.append(f"only if {metric.conditional}")
    if not metric.asked:
        parts.append("not asked yet")
    return ", ".join(parts)


def _logins(logins: frozenset[Login]) -> str:
    return "+".join(login for login in LOGINS if login in logins)


def metrics_table(
    api_version: ApiVersion | str, catalog: Catalog | None = None
) -> list[tuple[str, str, str, str]]:
    """Rows (kind, metric, logins, details) for `harvester metrics`: every media metric the
    catalogue knows for each kind at the version, then the account metrics (kind "ACCOUNT").

    `logins` is "facebook+instagram" or the one login a metric needs; details are the reply
    shape, breakdown, "fraction" for decimal values, and any condition on the media.
    """
    version = _version(api_version) if isinstance(api_version, str) else api_version
    catalog = catalog or load_catalog()
    rows = [
        (str(kind), metric.name, _logins(metric.logins), _describe(metric))
        for kind in MediaKind
        for metric in catalog.media_metrics_for(kind, version, unasked=True)
    ]
    for account in catalog.account_metrics_for(version, unasked=True):
        details = [account.metric_type, "periods=" + "/".join(account.periods)]
        if account.breakdowns:
            details.append("breakdowns=" + "/".join(account.breakdowns))
        if account.fractional:
            details.append("fraction")
        if not account.asked:
            details.append("not asked yet")
        rows.append((ACCOUNT.upper(), account.name, _logins(account.logins), ", ".join(details)))
    return rows


def metrics_markdown(api_version: ApiVersion | str, catalog: Catalog | None = None) -> str:
    """The same table as Markdown, by kind and login (what the README shows, pasted verbatim)."""
    lines = [
        f"Metrics at {api_version} by kind and login (`harvester metrics --markdown`):",
        "",
        "| kind | metric | login | details |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {k} | {m} | {login} | {d} |" for k, m, login, d in metrics_table(api_version, catalog)
    ]
    return "\n".join(lines) + "\n"
