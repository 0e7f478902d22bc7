"""Account insights (`/{ig-user-id}/insights`): time series, total values, maps and demographics.

Day boundaries sit at 07:00 UTC like Meta's recorded `end_time`s; a value belongs to the day whose
boundary ends it. Windows longer than 30 days are refused, data older than about two years comes
back empty, and time-series replies page by shifting since/until (no cursors), as Meta does.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from harvester.simulator import replies, validity, values
from harvester.simulator.call import Call
from harvester.simulator.entities import SimAccount
from harvester.simulator.ids import mix, mix_on, name_key
from harvester.simulator.objects import time_param
from harvester.simulator.world import World

DAY = 86_400
MAX_WINDOW = 30 * DAY
# Without since/until Meta looks back 24 hours [doc].
DEFAULT_SPAN = DAY
BOUNDARY_OFFSET = 7 * 3600  # end_time is 07:00:00+0000
TOP_SEGMENTS = 45
MIN_FOLLOWERS_FOR_DEMOGRAPHICS = 100

DIMENSION_VALUES: dict[str, tuple[str, ...]] = {
    "media_product_type": ("POST", "REEL", "STORY", "CAROUSEL_CONTAINER", "AD"),
    "follow_type": ("FOLLOWER", "NON_FOLLOWER", "UNKNOWN"),
    "follower_type": ("FOLLOWER", "NON_FOLLOWER"),
    "contact_button_type": (
        "BOOK_NOW",
        "CALL",
        "DIRECTION",
        "EMAIL",
        "INSTANT_EXPERIENCE",
        "TEXT",
        "UNDEFINED",
    ),
    "age": ("13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+"),
    "gender": ("F", "M", "U"),
    "country": tuple(
        [
            "US",
            "BR",
            "IN",
            "GB",
            "DE",
            "FR",
            "IT",
            "ES",
            "MX",
            "CA",
            "AU",
            "JP",
            "KR",
            "ID",
            "TR",
            "NL",
            "PL",
            "AR",
            "CO",
            "RU",
            "SE",
            "CH",
            "BE",
            "AT",
            "PT",
            "IE",
            "NO",
            "DK",
            "FI",
            "NZ",
            "ZA",
            "NG",
            "EG",
        ]
    ),
    "city": (
        "London, England",
        "New York, New York",
        "Los Angeles, California",
        "Paris, Ile-de-France",
        "Berlin, Berlin",
        "Madrid, Comunidad de Madrid",
        "Sao Paulo, Sao Paulo State",
        "Mexico City, Distrito Federal",
        "Toronto, Ontario",
        "Sydney, New South Wales",
        "Mumbai, Maharashtra",
        "Istanbul, Istanbul Province",
        "Rome, Lazio",
        "Tokyo, Tokyo",
        "Seoul, Seoul",
        "Jakarta, Jakarta",
        "Chicago, Illinois",
        "Amsterdam, North Holland",
        "Buenos Aires, Buenos Aires",
        "Milan, Lombardy",
        "Barcelona, Catalonia",
    ),
    "locale": ("en_US", "en_GB", "pt_BR", "es_ES", "es_LA", "fr_FR", "de_DE", "it_IT", "tr_TR"),
}
_AUDIENCE_KEYS = {
    "audience_country": lambda: list(DIMENSION_VALUES["country"]),
    "audience_city": lambda: list(DIMENSION_VALUES["city"]),
    "audience_locale": lambda: list(DIMENSION_VALUES["locale"]),
    "audience_gender_age": lambda: [
        f"{g}.{a}" for g in DIMENSION_VALUES["gender"] for a in DIMENSION_VALUES["age"][1:]
    ],
}


# Breakdown values in Meta's June 2026 reference that older recordings lack. They get a share of
# totals only for windows ending on or after this day, so every value the simulator served for
# earlier windows (and lakes recorded from it) stays exactly what it was.
LATE_DIMENSION_VALUES = frozenset({"UNKNOWN", "INSTANT_EXPERIENCE"})
LATE_VALUES_FROM = int(datetime(2026, 6, 1, tzinfo=UTC).timestamp())


def dimension_values(key: str, until: int) -> tuple[str, ...]:
    """The values a total_value breakdown by `key` splits a total into, for a window to `until`."""
    found = DIMENSION_VALUES[key]
    if until >= LATE_VALUES_FROM:
        return found
    return tuple(v for v in found if v not in LATE_DIMENSION_VALUES)


@lru_cache(maxsize=256)
def _combos(keys: tuple[str, ...], late: bool) -> tuple[tuple[str, ...], ...]:
    """Every combination of the keys' values, as Meta's dimension_values lists (one per key)."""
    until = LATE_VALUES_FROM if late else 0
    return tuple(itertools.product(*(dimension_values(k, until) for k in keys)))


def boundary(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 7, tzinfo=UTC)


@lru_cache(maxsize=4096)
def _end_time(day: date) -> str:
    return replies.fmt_ts(boundary(day))


@lru_cache(maxsize=4096)
def _end_times(days: tuple[date, ...]) -> tuple[str, ...]:
    """Each day's `end_time`, for a window's days at once: every account's series and
    online_followers ask the same windows, so a window's are looked up once, not a day each."""
    return tuple(map(_end_time, days))


@lru_cache(maxsize=4096)
def _days_between(first: int, last: int, oldest: int) -> tuple[date, ...]:
    """The days n in [first, last] whose boundary (n days after the epoch, 07:00 UTC) is not
    older than `oldest`: every account asks the same windows, so each is worked out once."""
    start = max(first, -(-(oldest - BOUNDARY_OFFSET) // DAY))
    return tuple(date.fromordinal(_EPOCH + n) for n in range(start, last + 1))


_EPOCH = date(1970, 1, 1).toordinal()


@lru_cache(maxsize=1 << 14)
def _split_head(seed: int, index: int, metric: str) -> int:
    """What one account's breakdown shares of one metric share over its windows (the window's
    start is mixed in last), so a day's split costs a round, not four."""
    return mix(seed, index, name_key(metric))


@lru_cache(maxsize=512)
def _title(metric: str) -> tuple[str, str]:
    words = metric.replace("_", " ")
    return words.capitalize(), f"The {words} of this profile in the period"


@lru_cache(maxsize=1 << 13)
def _labels(account_id: str, metric: str, period: str) -> tuple[str, str, str]:
    """An entry's title, description and id: the same for every window an account asks."""
    title, description = _title(metric)
    return title, description, f"{account_id}/insights/{metric}/{period}"


_ASKED_KEPT = 4096
# The paging links' query is the call's without these (each link sets its own).
_WINDOW_PARAMS = frozenset({"since", "until"})
# (rows, period, total_value?, breakdown keys, whether the reply carries paging links)
_Asked = tuple[list[validity.AccountMetric], str, bool, tuple[str, ...], bool]


class AccountInsights:
    def __init__(
        self,
        world: World,
        as_of: date | None,
        extra: Mapping[str, Iterable[str]] | None = None,
        withdrawn: Collection[tuple[str, str]] = (),
    ) -> None:
        self.world = world
        self.as_of = as_of
        self.withdrawn = frozenset(withdrawn)
        # What a request asks, once validated (every account asks the same requests).
        self._asked: dict[tuple[int, tuple[str | None, ...]], _Asked] = {}
        # Windows read from (since, until) as sent, and the days of a window per metric: every
        # account asks the same windows, each day of them several times (one request a group).
        self._windows: dict[tuple[str | None, str | None], tuple[int, int]] = {}
        self._window_days: dict[tuple[int, int, str], tuple[date, ...]] = {}
        # The world's extra account metrics: daily, as a series or a total, without breakdowns.
        names = next((v for k, v in (extra or {}).items() if k.upper() == "ACCOUNT"), ())
        self.extra = {
            name: validity.AccountMetric(
                name, 0, validity.NO_END, None, frozenset({"day"}), "either", frozenset()
            )
            for name in names
        }

    def listed(self, version: int) -> list[str]:
        """The names in Meta's "must be one of" reply for account insights."""
        return sorted({*validity.known_account_metrics(version, self.as_of), *self.extra})

    def _rows(self, names: list[str], version: int) -> list[validity.AccountMetric]:
        rows = []
        for i, name in enumerate(names):
            row = validity.account_metric(name, version, self.as_of) or self.extra.get(name)
            if row is None:
                removed_in = validity.account_removal_version(name, version)
                if removed_in is not None:
                    raise replies.account_metric_removed(name, removed_in)
                raise replies.metric_not_one_of(i, self.listed(version))
            rows.append(row)
        return rows

    def reply(self, acc: SimAccount, version: int, call: Call) -> dict[str, Any]:
        p = call.params
        # The parameters that decide what a request asks and whether Meta takes it (not its
        # window), read one by one: `tuple(map(p.get, names))` cost twice as much.
        g = p.get
        key = (g("metric"), g("period"), g("metric_type"), g("breakdown"), g("timeframe"))
        asked = self._asked.get((version, key))
        if asked is None:
            asked = self._validate(version, p)
            if len(self._asked) >= _ASKED_KEPT:
                self._asked.clear()
            self._asked[version, key] = asked
        rows, period, total, breakdown, paged = asked
        since, until = self._window(call)
        data = [
            entry
            for row in rows
            if (entry := self._entry(acc, row, period, total, breakdown, since, until, p))
            is not None
        ]
        body: dict[str, Any] = {"data": data}
        if paged:
            span = until - since
            # `call.url_with(since=..., until=...)` for both links, the rest of the query quoted
            # once for every window (a whole number needs no quoting).
            rest = call.prefix_without(_WINDOW_PARAMS)
            body["paging"] = {
                "previous": f"{rest}since={since - span}&until={until - span}",
                "next": f"{rest}since={since + span}&until={until + span}",
            }
        return body

    def _validate(self, version: int, p: dict[str, str]) -> _Asked:
        text = p.get("metric")
        if text is None or not text.strip():
            raise replies.bad_param("The parameter metric is required")
        names = list(dict.fromkeys(m.strip() for m in text.split(",")))
        rows = self._rows(names, version)
        period = p.get("period")
        if period is None:
            raise replies.bad_param("The parameter period is required")
        metric_type = p.get("metric_type")
        if metric_type not in (None, "default", "time_series", "total_value"):
            raise replies.bad_param(
                "metric_type must be one of the following values: default, time_series, total_value"
            )
        total = metric_type == "total_value"
        text = p.get("breakdown")
        breakdown = tuple(k.strip() for k in text.split(",")) if text else ()
        for row in rows:
            self._check(row, period, total, breakdown, version, p.get("timeframe"))
        paged = any(row.style in ("series", "either", "total") for row in rows) or (
            any(r.metric == "online_followers" for r in rows)
        )
        return rows, period, total, breakdown, paged

    def _check(
        self,
        row: validity.AccountMetric,
        period: str,
        total: bool,
        breakdown: tuple[str, ...],
        version: int,
        timeframe: str | None,
    ) -> None:
        if period not in row.periods:
            raise replies.bad_param(
                f"Incompatible metric ({row.metric}) with period ({period}): "
                f"supported periods are {', '.join(sorted(row.periods))}"
            )
        if row.style in ("total", "demographics") and not total:
            raise replies.bad_param(
                f"The following metrics ({row.metric}) should be specified with parameter "
                "metric_type=total_value"
            )
        if row.style in ("series", "map") and total:
            raise replies.bad_param(
                f"The metric {row.metric} does not support metric_type=total_value"
            )
        for key in breakdown:
            if key not in row.breakdowns or not total or (row.metric, key) in self.withdrawn:
                raise replies.bad_param(
                    f"The breakdown {key} is not supported for the metric {row.metric}"
                )
        if row.style == "demographics":
            if not breakdown:
                raise replies.bad_param(f"The metric {row.metric} requires the breakdown parameter")
            frames = validity.demographic_timeframes(row.metric, version, self.as_of)
            needed = row.metric in validity.TIMEFRAME_REQUIRED
            if (timeframe is not None or needed) and timeframe not in frames:
                raise replies.bad_param(
                    f"timeframe must be one of the following values: {', '.join(sorted(frames))}"
                )

    def _window(self, call: Call) -> tuple[int, int]:
        p = call.params
        key = (p.get("since"), p.get("until"))
        found = self._windows.get(key)
        if found is None:
            found = self._read_window(call)
            if len(self._windows) >= _ASKED_KEPT:
                self._windows.clear()
            self._windows[key] = found
        return found

    def _read_window(self, call: Call) -> tuple[int, int]:
        """(since, until) of a call (the world's clock never moves, so a window read once stays
        read; only windows Meta takes are remembered, an error is raised each time)."""
        now = self.world.now_ts
        since, until = time_param(call, "since", now), time_param(call, "until", now)
        if until is None:
            until = now if since is None else min(now, since + DEFAULT_SPAN)
        if since is None:
            since = until - DEFAULT_SPAN
        if since > until:
            raise replies.bad_param("The since parameter must be earlier than the until parameter")
        if until - since > MAX_WINDOW:
            raise replies.too_many_days()
        return since, until

    def _days(self, since: int, until: int, metric: str = "") -> tuple[date, ...]:
        """Days whose 07:00 UTC boundary falls in (since, until], within retention, not future."""
        key = (since, until, metric)
        found = self._window_days.get(key)
        if found is None:
            first = (since - BOUNDARY_OFFSET) // DAY + 1
            last = (min(until, self.world.now_ts) - BOUNDARY_OFFSET) // DAY
            found = _days_between(first, last, self.world.account_data_from(metric))
            if len(self._window_days) >= _ASKED_KEPT:
                self._window_days.clear()
            self._window_days[key] = found
        return found

    def _entry(
        self,
        acc: SimAccount,
        row: validity.AccountMetric,
        period: str,
        total: bool,
        breakdown: tuple[str, ...],
        since: int,
        until: int,
        params: dict[str, str],
    ) -> dict[str, Any] | None:
        # Built as one literal per style (the keys in Meta's order): an entry is the reply's
        # commonest object, and building it key by key was a tenth of an account insights reply.
        name = row.metric
        title, description, ident = _labels(acc.id, name, period)
        style = row.style
        if style == "demographics":
            if acc.followers_count < MIN_FOLLOWERS_FOR_DEMOGRAPHICS:
                return None
            shown = self._demographics(acc, name, breakdown, params.get("timeframe", ""))
            return {
                "name": name,
                "period": period,
                "title": title,
                "description": description,
                "total_value": {"breakdowns": [shown]},
                "id": ident,
            }
        if style == "map":
            series = self._maps(acc, name, since, until)
        elif total:
            return {
                "name": name,
                "period": period,
                "title": title,
                "description": description,
                "total_value": self._total_value(acc, name, period, breakdown, since, until),
                "id": ident,
            }
        else:
            days = self._days(since, until, name)
            daily = values.account_values(
                self.world.seed, acc.index, acc.followers_count, name, period, days
            )
            series = [
                {"value": v, "end_time": e} for v, e in zip(daily, _end_times(days), strict=True)
            ]
        return {
            "name": name,
            "period": period,
            "values": series,
            "title": title,
            "description": description,
            "id": ident,
        }

    def _total_value(
        self,
        acc: SimAccount,
        name: str,
        period: str,
        breakdown: tuple[str, ...],
        since: int,
        until: int,
    ) -> dict[str, Any]:
        # `World.account_total_value`, one call less (it hands the same arguments on).
        seed = self.world.seed
        days = self._days(since, until, name)
        value = values.account_total(seed, acc.index, acc.followers_count, name, period, days)
        if not breakdown:
            return {"value": value}
        head = mix_on(_split_head(seed, acc.index, name), since)
        combos = _combos(breakdown, until >= LATE_VALUES_FROM)
        parts = values.shares(value, len(combos), head)
        # `values.split_from`'s parts, made rows at once: zero parts are left out, as there.
        results = [
            {"dimension_values": k, "value": v} for k, v in zip(combos, parts, strict=True) if v > 0
        ]
        return {"value": value, "breakdowns": [{"dimension_keys": breakdown, "results": results}]}

    def _maps(self, acc: SimAccount, name: str, since: int, until: int) -> list[dict[str, Any]]:
        seed = self.world.seed
        if name == "online_followers":
            days = self._days(since, until, name)
            return [
                {"value": values.hour_map(seed, acc, d), "end_time": e}
                for d, e in zip(days, _end_times(days), strict=True)
            ]
        keys = _AUDIENCE_KEYS[name]()
        today = self.world.day_floor(self.world.now)
        counts = values.segment_counts(seed, acc, name_key(name), keys, acc.followers_count)
        return [{"value": counts, "end_time": _end_time(today)}]

    def _demographics(
        self, acc: SimAccount, name: str, breakdown: tuple[str, ...], timeframe: str
    ) -> dict[str, Any]:
        combos = _demographic_combos(breakdown)
        base = acc.followers_count if name == "follower_demographics" else acc.followers_count // 3
        parts = values.segment_shares(
            self.world.seed, acc, name_key(name + timeframe), len(combos), base
        )
        # `segment_counts`' segments, biggest first and ties by their joined key: each joined
        # key is unique, so the tuple after it never decides the order.
        top = sorted([(-v, k, c) for (k, c), v in zip(combos, parts, strict=True) if v > 0])
        return {
            "dimension_keys": breakdown,
            "results": [{"dimension_values": c, "value": -v} for v, _, c in top[:TOP_SEGMENTS]],
        }


@lru_cache(maxsize=64)
def _demographic_combos(keys: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Each segment of a breakdown as its joined key ("F|25-34", what `segment_counts` keys and
    its ties sort by) and its dimension_values (orjson writes the tuple as an array)."""
    return tuple(("|".join(c), c) for c in itertools.product(*(DIMENSION_VALUES[k] for k in keys)))
