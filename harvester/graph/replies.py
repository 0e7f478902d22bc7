"""Pure parsers for Graph API reply bodies: media objects and insights in both reply shapes.

Replies are untrusted input. Every parser here is total: a reply of an unexpected shape raises
`MalformedReply` naming what was wrong, never a KeyError or TypeError from deep inside.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from functools import cache
from operator import itemgetter
from sys import intern
from typing import Any, TypeGuard, get_args, get_type_hints

from harvester.catalog import load_catalog
from harvester.graph.errors import MalformedReply
from harvester.models import Media, MediaDetails, Profile, Source

# A reply's number as the lake keeps it: (value, value_float). An exact integer of a count metric
# is `value` (int64); every other number (a fractional metric's, or a count Meta sent with a
# fraction) is `value_float` with `value` None, digits intact. (None, None) is "no data".
Number = tuple[int | None, float | None]
# One parsed insight value: (metric, period, breakdown, value, value_float). breakdown is None for
# the total, else "key=value" pairs joined by "," in the order Meta lists the dimension keys.
InsightValue = tuple[str, str | None, str | None, int | None, float | None]

# int64, the type of the lake's `value`: a larger integer would fail the write, far from its reply.
INT64_MIN, INT64_END = -(2**63), 2**63


@cache
def fractional_metrics() -> frozenset[str]:
    """The catalogue's decimal metrics (reels_skip_rate): always `value_float`, even when whole,
    so one metric's values sit in one column."""
    return load_catalog().fractional_metrics


def number(name: str, raw: Any) -> Number:
    """A reply's value, exactly: never rounded, truncated or coerced; None stays None.

    Raises `MalformedReply` naming the metric for anything that is not a finite number (a
    string, a bool, a list, NaN), so the caller writes an error row instead of a silent 0.
    """
    if type(raw) is int and INT64_MIN <= raw < INT64_END:  # the usual count, checked first
        return (None, float(raw)) if name in fractional_metrics() else (raw, None)
    if raw is None:
        return None, None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise MalformedReply(f"{name}: value is not a finite number: {raw!r:.80}")
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise MalformedReply(f"{name}: value is not a finite number: {raw!r:.80}")
        if raw.is_integer() and INT64_MIN <= raw < INT64_END and name not in fractional_metrics():
            return int(raw), None  # Meta sends some counts as 12.0: the same number, exactly
        return None, raw
    if not INT64_MIN <= raw < INT64_END:
        raise MalformedReply(f"{name}: value {raw} does not fit a 64-bit integer")
    if name in fractional_metrics():
        return None, float(raw)
    return raw, None


def parse_timestamp(text: object) -> datetime | None:
    """Meta's `2019-04-05T07:56:32+0000` (also accepts `Z` and `+00:00`), as aware UTC."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise MalformedReply(f"timestamp is not a string: {text!r:.80}")
    try:
        # Python 3.11's ISO parser reads Meta's `+0000` offset, at 1/60 the cost of strptime.
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")
        except ValueError:
            raise MalformedReply(f"unreadable timestamp {text!r:.80}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_media(item: object, account_id: str, parent_id: str | None = None) -> Iterator[Media]:
    """One listed media object, then its carousel children (if the listing expanded them).

    Its details (caption, counts, URLs) are read from whatever the reply holds: a field the
    listing did not ask, or that Meta omits (a hidden like count, a withheld media URL), is None.
    """
    if not isinstance(item, dict):
        raise MalformedReply(f"media item is not an object: {item!r:.80}")
    media_id = item.get("id")
    if not isinstance(media_id, str) or not media_id:
        raise MalformedReply(f"media item without an id: {item!r:.120}")
    media_type = optional_str(item, "media_type")
    product = optional_str(item, "media_product_type")
    yield Media(
        account_id=account_id,
        id=media_id,
        media_type=media_type or "",
        media_product_type=product or ("FEED" if parent_id is None else ""),
        timestamp=parse_timestamp(item.get("timestamp")),
        permalink=optional_str(item, "permalink"),
        parent_id=parent_id,
        details=_details(item),
    )
    children = item.get("children")
    if children is not None:
        if not isinstance(children, dict) or not isinstance(children.get("data"), list):
            raise MalformedReply(f"children of {media_id} is not a list of objects")
        for child in children["data"]:
            yield from parse_media(child, account_id, parent_id=media_id)


# The details' keys and the type each must have when present (from `MediaDetails`' annotations).
_DETAIL_KEYS: tuple[str, ...] = MediaDetails._fields
_DETAIL_TYPES: tuple[type, ...] = tuple(
    next(t for t in get_args(hint) if t is not type(None))
    for hint in get_type_hints(MediaDetails).values()
)
# The type signatures of details already found well-typed, each with a getter of its ints (whose
# int64 range is checked per media), or None when it has none. A run meets a handful (a hidden
# like count, a photo without thumbnail_url, ...); bounded anyway, as replies are untrusted.
_SIGNATURES: dict[tuple[type, ...], Callable[[tuple[Any, ...]], tuple[int, ...]] | None] = {}
_MAX_SIGNATURES = 4096


def _details(item: dict[str, Any]) -> MediaDetails:
    """A media's details, checked. Runs per listed media, so it reads the keys and their types
    in C (`map`) and checks a signature it has seen once, rather than each key in Python."""
    values = tuple(map(item.get, _DETAIL_KEYS))
    signature = tuple(map(type, values))
    if signature in _SIGNATURES:
        ints = _SIGNATURES[signature]
    else:
        ints = _check_signature(signature, values)
    # |v| < 2**63 for each int: one C pass (a count of exactly -2**63 is refused too).
    if ints is not None and max(map(abs, ints(values))) >> 63:
        key, value = next(
            (k, v)
            for k, v in zip(_DETAIL_KEYS, values, strict=True)
            if type(v) is int and not INT64_MIN <= v < INT64_END
        )
        raise MalformedReply(f"{key} is not a 64-bit integer: {value!r:.80}")
    return MediaDetails._make(values)


def _check_signature(
    signature: tuple[type, ...], values: tuple[Any, ...]
) -> Callable[[tuple[Any, ...]], tuple[int, ...]] | None:
    for key, kind, want, value in zip(_DETAIL_KEYS, signature, _DETAIL_TYPES, values, strict=True):
        if kind is not type(None) and kind is not want:
            expected = {int: "a 64-bit integer", bool: "true or false"}.get(want, "a string")
            raise MalformedReply(f"{key} is not {expected}: {value!r:.80}")
    positions = [i for i, kind in enumerate(signature) if kind is int]
    ints = None
    if positions:
        pick = itemgetter(*positions)
        ints = (lambda v: (pick(v),)) if len(positions) == 1 else pick
    if len(_SIGNATURES) < _MAX_SIGNATURES:
        _SIGNATURES[signature] = ints
    return ints


def parse_profile(reply: object, account_id: str, source: Source = Source.OWNED) -> Profile:
    """An IG User node (`GET /{ig-user-id}?fields=username,...`) as one `accounts` row; a field
    Meta omits (no website, no biography) is None."""
    if not isinstance(reply, dict):
        raise MalformedReply(f"IG user reply is not an object: {reply!r:.80}")
    if reply.get("id", account_id) != account_id:
        raise MalformedReply(f"IG user reply for {reply.get('id')!r:.40}, asked {account_id}")
    return read_profile(reply, account_id, source)


def read_profile(node: dict[str, Any], account_id: str, source: Source) -> Profile:
    """The profile fields of an IG User node, an owned account's or a competitor's (business
    discovery nests the same fields)."""
    return Profile(
        account_id=account_id,
        source=source,
        username=optional_str(node, "username"),
        name=optional_str(node, "name"),
        biography=optional_str(node, "biography"),
        website=optional_str(node, "website"),
        followers_count=optional_count(node, "followers_count"),
        follows_count=optional_count(node, "follows_count"),
        media_count=optional_count(node, "media_count"),
        profile_picture_url=optional_str(node, "profile_picture_url"),
    )


def parse_insights(
    reply: object, requested: Sequence[str], *, with_totals: bool = True
) -> list[InsightValue]:
    """Insight values of one `/insights` reply, one entry per requested metric at least.

    A requested metric the reply leaves out (Meta answers `{"data": []}` when it has nothing yet) is
    returned with value None: "no data" must stay distinguishable from a real zero.
    """
    data = reply.get("data") if isinstance(reply, dict) else None
    if not isinstance(data, list):
        raise MalformedReply(f"insights reply without a 'data' list: {reply!r:.120}")
    out: list[InsightValue] = []
    append = out.append
    seen: set[str] = set()
    fractional = fractional_metrics()
    for entry in data:
        # The shapes of nearly every entry, read without the checks' calls (a media's ~13 values
        # are the client's hottest loop); anything else takes the checked path below. First,
        # inline, the commonest of all: one int64 value of a count metric.
        if type(entry) is dict:
            metric, when, values = entry.get("name"), entry.get("period"), entry.get("values")
            if (
                type(metric) is str
                and (when is None or type(when) is str)
                and type(values) is list
                and len(values) == 1
                and type(first := values[0]) is dict
                and type(value := first.get("value")) is int
                and INT64_MIN <= value < INT64_END
                and metric not in fractional
                and entry.get("total_value") is None
            ):
                # Interned as in `_plain`.
                metric = intern(metric)
                seen.add(metric)
                if with_totals:
                    append((metric, None if when is None else intern(when), None, value, None))
                continue
        plain = _plain(entry, with_totals, fractional) if type(entry) is dict else None
        if plain is not None:
            seen.add(entry["name"])
            out.extend(plain)
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise MalformedReply(f"insights entry without a name: {entry!r:.120}")
        name: str = entry["name"]
        period = optional_str(entry, "period")
        seen.add(name)
        total = entry.get("total_value")
        if total is not None:
            out.extend(_total_value(name, period, total, with_totals))
        elif with_totals:
            out.append((name, period, None, *_first_value(name, entry.get("values"))))
    if with_totals and not seen.issuperset(requested):
        out.extend((name, "lifetime", None, None, None) for name in requested if name not in seen)
    return out


def _plain(
    entry: dict[str, Any], with_totals: bool, fractional: frozenset[str]
) -> list[InsightValue] | None:
    """The values of an entry of the usual shape (int64 values of a count metric, single-key
    breakdowns), or None for anything else."""
    name = entry.get("name")
    period = entry.get("period")
    if type(name) is not str or (period is not None and type(period) is not str):
        return None
    # Interned: the sink holds a row group of these values, and every reply brings its own copy
    # of "reach" and "lifetime" (orjson shares keys, not values): ~120 bytes a row otherwise.
    name = intern(name)
    period = None if period is None else intern(period)
    total = entry.get("total_value")
    if total is None:
        values = entry.get("values")
        first = values[0] if type(values) is list and len(values) == 1 else None
        value = first.get("value") if type(first) is dict else None
        if name in fractional:  # a finite float of a fractional metric, else the checked path
            if type(value) is not float or not math.isfinite(value):
                return None
            return [(name, period, None, None, value)] if with_totals else []
        if type(value) is not int or not INT64_MIN <= value < INT64_END:
            return None
        return [(name, period, None, value, None)] if with_totals else []
    if name in fractional:
        return None
    if type(total) is not dict or type(value := total.get("value")) is not int:
        return None
    if not INT64_MIN <= value < INT64_END:
        return None
    breakdowns = total.get("breakdowns", ())
    if type(breakdowns) is not list and breakdowns != ():
        return None
    out: list[InsightValue] = [(name, period, None, value, None)] if with_totals else []
    for breakdown in breakdowns:
        if type(breakdown) is not dict:
            return None
        key, results = only_string(breakdown.get("dimension_keys")), breakdown.get("results")
        if key is None or type(results) is not list:
            return None
        for result in results:
            if type(result) is not dict:
                return None
            label, value = only_string(result.get("dimension_values")), result.get("value")
            if label is None or type(value) is not int or not INT64_MIN <= value < INT64_END:
                return None
            out.append((name, period, intern(f"{key}={label}"), value, None))
    return out


def only_string(value: object) -> str | None:
    """The string of a one-string list, else None."""
    if type(value) is list and len(value) == 1 and type(value[0]) is str:
        return value[0]
    return None


def _total_value(
    name: str, period: str | None, total: object, with_totals: bool
) -> Iterator[InsightValue]:
    if not isinstance(total, dict):
        raise MalformedReply(f"{name}: total_value is not an object")
    if with_totals:
        yield (name, period, None, *number(name, total.get("value")))
    for keys, values, value in breakdown_results(name, total):
        label = ",".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))
        yield (name, period, label, *value)


def breakdown_results(
    name: str, total: dict[str, Any]
) -> Iterator[tuple[list[str], list[str], Number]]:
    """(dimension keys, dimension values, value) for each breakdown result of a `total_value`."""
    breakdowns = total.get("breakdowns") or []
    if not isinstance(breakdowns, list):
        raise MalformedReply(f"{name}: breakdowns is not a list")
    for breakdown in breakdowns:
        keys = breakdown.get("dimension_keys") if isinstance(breakdown, dict) else None
        results = breakdown.get("results") if isinstance(breakdown, dict) else None
        if not _strings(keys) or not isinstance(results, list):
            raise MalformedReply(f"{name}: breakdown without dimension_keys/results")
        width = len(keys)
        for result in results:
            values = result.get("dimension_values") if isinstance(result, dict) else None
            if not _strings(values) or len(values) != width:
                raise MalformedReply(f"{name}: breakdown result does not match its keys")
            yield keys, values, number(name, result.get("value"))


def _strings(value: object) -> TypeGuard[list[str]]:
    if type(value) is list and len(value) == 1:  # one dimension: no generator for all()
        return type(value[0]) is str or isinstance(value[0], str)
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _first_value(name: str, values: object) -> Number:
    if values is None or values == []:
        return None, None
    if not isinstance(values, list) or not isinstance(values[0], dict):
        raise MalformedReply(f"{name}: values is not a list of objects")
    return number(name, values[0].get("value"))


def optional_str(item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    if value is None or isinstance(value, str):
        return value
    raise MalformedReply(f"{key} is not a string: {value!r:.80}")


def optional_count(item: dict[str, Any], key: str) -> int | None:
    """A field's count as int64, None when absent; anything else (a string, a bool, a float) is
    a malformed reply, never coerced."""
    value = item.get(key)
    if value is None or (type(value) is int and INT64_MIN <= value < INT64_END):
        return value
    raise MalformedReply(f"{key} is not a 64-bit integer: {value!r:.80}")
