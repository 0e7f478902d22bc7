"""Routing: which insight metrics to ask for one media, at one API version, given what Meta dropped.

Pure and cached: it runs once per listed media, and the answer depends only on the media's kind, the
API version, the metrics learned dropped during the run, and the catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from harvester.catalog import ApiVersion, Catalog, MediaKind, MediaMetric, load_catalog, media_kind

__all__ = ["EMPTY_ROUTE", "Route", "metrics_table", "route"]


@dataclass(frozen=True, slots=True)
class Route:
    """The insight requests for one media.

    `metrics` is every routed metric, asked in one request (`metric=a,b,c`); breakdown metrics are
    included, as without `breakdown` they reply with their total. Each `(metric, key)` in
    `breakdowns` is one extra request `metric=<metric>&breakdown=<key>` for the split, separate
    because Meta rejects a breakdown request that mixes in metrics without that breakdown.
    """

    metrics: tuple[str, ...]
    breakdowns: tuple[tuple[str, str], ...]

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
    catalog: Catalog, kind: MediaKind, version: ApiVersion, dropped: frozenset[str]
) -> Route:
    metrics: list[str] = []
    breakdowns: list[tuple[str, str]] = []
    for metric in catalog.media_metrics_for(kind, version):
        if metric.name in dropped:
            continue
        metrics.append(metric.name)
        if metric.breakdown is not None:
            breakdowns.append((metric.name, metric.breakdown))
    return Route(metrics=tuple(metrics), breakdowns=tuple(breakdowns))


def route(
    media_type: str,
    media_product_type: str | None,
    api_version: ApiVersion | str,
    *,
    is_child: bool = False,
    dropped: frozenset[str] = frozenset(),
    catalog: Catalog | None = None,
) -> Route:
    """The requests for one media; empty for carousel children and for kinds we do not route.

    `dropped` holds the metrics Meta rejected earlier in the run for this (kind, version); the date
    based removals in the catalogue are deliberately not applied here (see metrics.toml).
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
    return _route_kind(catalog or load_catalog(), kind, version, dropped)


def _describe(metric: MediaMetric) -> str:
    if metric.breakdown is None:
        return metric.shape
    return f"{metric.shape}, breakdown={metric.breakdown}"


def metrics_table(
    api_version: ApiVersion | str, catalog: Catalog | None = None
) -> list[tuple[str, str, str]]:
    """Rows (kind, metric, shape[, breakdown]) for `harvester metrics --api-version`."""
    version = _version(api_version) if isinstance(api_version, str) else api_version
    catalog = catalog or load_catalog()
    return [
        (str(kind), metric.name, _describe(metric))
        for kind in MediaKind
        for metric in catalog.media_metrics_for(kind, version)
    ]
