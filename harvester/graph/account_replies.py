"""Pure parsers: one account `/insights` reply -> `account_insights` values, whatever its shape.

Meta answers account insights in four shapes (time series, per-day maps, total values with
breakdowns, demographics); the lake has one: a value per (metric, period, end_time, dimension,
dimension_value). The encodings chosen here are documented in the README's lake section:

- time series: one row per `end_time`, dimension null;
- `online_followers`: one row per day and hour, dimension `hour`, dimension_value `0`..`23`;
- `audience_*` maps: one row per key; `audience_gender_age` keys (`F.18-24`) are split into
  dimension `age,gender` and dimension_value `18-24,F`, the order Meta's own age/gender
  demographics breakdown uses, so both eras of the data query alike;
- total values: the total with dimension null, then one row per breakdown result with the
  comma-joined dimension keys and values; end_time is the end of the requested window;
- demographics: period `lifetime:<timeframe>` (e.g. `lifetime:this_month`), end_time null.

Replies are untrusted: anything off-shape raises `MalformedReply` naming what was wrong.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime
from sys import intern
from typing import Any

from harvester.graph.errors import MalformedReply
from harvester.graph.replies import (
    INT64_END,
    INT64_MIN,
    Number,
    breakdown_results,
    fractional_metrics,
    number,
    only_string,
    parse_timestamp,
)

# (metric, period, end_time, dimension, dimension_value, value, value_float): a row without its
# account and tail; `value`/`value_float` as `graph.replies.number` splits a reply's number.
AccountValue = tuple[str, str, datetime | None, str | None, str | None, int | None, float | None]

# The dimension each pre-v18 audience map is keyed by.
AUDIENCE_DIMENSIONS = {
    "audience_city": "city",
    "audience_country": "country",
    "audience_locale": "locale",
    "audience_gender_age": "age,gender",
}


def parse_account_reply(
    reply: object,
    kind: str,
    metrics: Collection[str],
    *,
    period: str = "lifetime",
    until: datetime | None = None,
    timeframe: str | None = None,
    skip_totals: Collection[str] = (),
) -> list[AccountValue]:
    """Values of one reply to a request of `kind` (see `harvest.account_insights.AccountRequest`).

    Entries for metrics that were not asked are ignored; a metric Meta leaves out has no rows
    (account insights have no "no data" marker to keep, unlike a media's lifetime value).
    """
    if not isinstance(reply, dict) or not isinstance(reply.get("data"), list):
        raise MalformedReply(f"account insights reply without a 'data' list: {reply!r:.120}")
    out: list[AccountValue] = []
    for entry in reply["data"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise MalformedReply(f"account insights entry without a name: {entry!r:.120}")
        name: str = entry["name"]
        if name not in metrics:
            continue
        entry_period = entry.get("period")
        got_period = entry_period if isinstance(entry_period, str) and entry_period else period
        if kind == "series":
            out.extend(_series(name, got_period, entry))
        elif kind == "online":
            out.extend(_hours(name, got_period, entry))
        elif kind == "audience":
            out.extend(_audience(name, got_period, entry))
        elif kind == "total":
            out.extend(_totals(name, got_period, until, entry, name not in skip_totals))
        elif kind == "demographics":
            label = f"{got_period}:{timeframe}" if timeframe else got_period
            out.extend(_totals(name, label, None, entry, True))
        else:
            raise ValueError(f"unknown account request kind {kind!r}")
    return out


def _values(name: str, entry: dict[str, Any]) -> Iterator[tuple[Any, datetime | None]]:
    values = entry.get("values")
    if values is None:
        return
    if not isinstance(values, list):
        raise MalformedReply(f"{name}: values is not a list")
    for item in values:
        if not isinstance(item, dict):
            raise MalformedReply(f"{name}: a value is not an object: {item!r:.80}")
        yield item.get("value"), parse_timestamp(item.get("end_time"))


def _series(name: str, period: str, entry: dict[str, Any]) -> Iterator[AccountValue]:
    for value, end_time in _values(name, entry):
        yield (name, period, end_time, None, None, *number(name, value))


def _hours(name: str, period: str, entry: dict[str, Any]) -> Iterator[AccountValue]:
    for value, end_time in _values(name, entry):
        counts = _map(name, value)
        for hour in sorted(counts, key=lambda h: (len(h), h)):
            yield (name, period, end_time, "hour", hour, *counts[hour])


def _audience(name: str, period: str, entry: dict[str, Any]) -> Iterator[AccountValue]:
    dimension = AUDIENCE_DIMENSIONS.get(name, name.removeprefix("audience_"))
    for value, end_time in _values(name, entry):
        counts = _map(name, value)
        for key in sorted(counts):
            yield (name, period, end_time, dimension, _audience_key(name, key), *counts[key])


def _audience_key(name: str, key: str) -> str:
    if name != "audience_gender_age":
        return key
    gender, dot, age = key.partition(".")
    if not dot or not gender or not age:
        raise MalformedReply(f"{name}: key {key!r:.40} is not GENDER.AGE")
    return f"{age},{gender}"


def _totals(
    name: str, period: str, end_time: datetime | None, entry: dict[str, Any], with_total: bool
) -> list[AccountValue]:
    plain = _plain_totals(name, period, end_time, entry, with_total)
    if plain is None:
        return list(_checked_totals(name, period, end_time, entry, with_total))
    return plain


def _checked_totals(
    name: str, period: str, end_time: datetime | None, entry: dict[str, Any], with_total: bool
) -> Iterator[AccountValue]:
    total = entry.get("total_value")
    if total is None:
        return
    if not isinstance(total, dict):
        raise MalformedReply(f"{name}: total_value is not an object")
    if with_total and "value" in total:
        yield (name, period, end_time, None, None, *number(name, total["value"]))
    last: list[str] | None = None
    dimension = ""
    for keys, values, value in breakdown_results(name, total):
        if keys is not last:  # a breakdown's results share its keys: joined once
            last, dimension = keys, ",".join(keys)
        label = values[0] if len(values) == 1 else ",".join(values)
        yield (name, period, end_time, dimension, label, *value)


def _plain_totals(
    name: str, period: str, end_time: datetime | None, entry: dict[str, Any], with_total: bool
) -> list[AccountValue] | None:
    """The rows of a total of the usual shape (int64 counts, one key per breakdown), or None for
    anything else, which `_checked_totals` then reads with every check: a daily total with its
    breakdown is nearly every account insights reply, and this loop their client's hottest."""
    total = entry.get("total_value")
    if type(total) is not dict or name in fractional_metrics():
        return None
    out: list[AccountValue] = []
    if with_total and "value" in total:
        value = total["value"]
        if type(value) is not int or not INT64_MIN <= value < INT64_END:
            return None
        out.append((name, period, end_time, None, None, value, None))
    breakdowns = total.get("breakdowns", ())
    if type(breakdowns) is not list and breakdowns != ():
        return None
    for breakdown in breakdowns:
        if type(breakdown) is not dict:
            return None
        key, results = only_string(breakdown.get("dimension_keys")), breakdown.get("results")
        if key is None or type(results) is not list:
            return None
        # Interned: the sink holds a row group of these, each reply bringing its own copies.
        dimension = intern(key)
        for result in results:
            if type(result) is not dict:
                return None
            label, value = only_string(result.get("dimension_values")), result.get("value")
            if label is None or type(value) is not int or not INT64_MIN <= value < INT64_END:
                return None
            out.append((name, period, end_time, dimension, intern(label), value, None))
    return out


def _map(name: str, value: object) -> dict[str, Number]:
    """A per-day map's numbers by key; keys whose number is null have no row."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedReply(f"{name}: value is not a map: {value!r:.80}")
    out: dict[str, Number] = {}
    for key, count in value.items():
        found = number(name, count)
        if found != (None, None):
            out[str(key)] = found
    return out
