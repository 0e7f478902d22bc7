"""Account insights end to end against the simulated Graph API, read back with real lake readers.

Expectations come from the simulator's world (`account_metric_value`, its map and demographic
functions) and its own validity tables, never from the harvester's catalogue.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.dataset as ds
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harvester.catalog import ApiVersion, load_catalog
from harvester.cli import demo_config
from harvester.config import ConfigError, parse_config
from harvester.graph.account_replies import parse_account_reply
from harvester.graph.client import GraphClient
from harvester.graph.errors import MalformedReply
from harvester.harvest.account_insights import (
    DAY,
    DEFAULT_WINDOW,
    MAX_SPAN,
    RETENTION,
    AccountInsightsStage,
    account_window,
    piece_id,
    plan_pieces,
    plan_requests,
    split_window,
)
from harvester.harvest.pipeline import run_harvest
from harvester.harvest.plan import make_plan
from harvester.harvest.report import RunReport
from harvester.harvest.routing import Refusals
from harvester.harvest.rows import RunRows
from harvester.lake.jobs import job_spec
from harvester.lake.schema import SCHEMAS
from harvester.models import Dataset, HarvestWindow, Rows
from harvester.simulator import LimitSettings, SimulatorSettings, World, run_simulator, validity
from harvester.simulator.account_insights import DIMENSION_VALUES
from harvester.simulator.ids import name_key
from harvester.simulator.values import hour_map, segment_counts

# The original brief's account metrics and their periods (shared/seed-metrics.md), written out here
# so that a catalogue that forgets one fails this test.
BRIEF: dict[str, tuple[str, ...]] = {
    "audience_city": ("lifetime",),
    "audience_country": ("lifetime",),
    "audience_gender_age": ("lifetime",),
    "audience_locale": ("lifetime",),
    "email_contacts": ("day",),
    "follower_count": ("day",),
    "get_directions_clicks": ("day",),
    "impressions": ("day", "week", "days_28"),
    "online_followers": ("lifetime",),
    "phone_call_clicks": ("day",),
    "profile_views": ("day",),
    "reach": ("day", "week", "days_28"),
    "text_message_clicks": ("day",),
    "website_clicks": ("day",),
}
# Added by Meta for all versions (2025-12-03), so a v17 harvest asks it too: a daily total.
ADDED: dict[str, tuple[str, ...]] = {"reposts": ("day",)}
AUDIENCE = {
    "audience_city": "city",
    "audience_country": "country",
    "audience_locale": "locale",
    "audience_gender_age": "age,gender",
}
# Seed 3's only account has ~15k followers: enough for demographics (Meta needs 100).
SETTINGS = SimulatorSettings(seed=3, accounts=1, media_per_account=2, troubles=False)
QUIET = {"harvest": {"media_insights": False, "stories": False}}


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def read(lake: Path, dataset: Dataset) -> list[dict[str, Any]]:
    if not (lake / dataset.value).exists():
        return []
    table = ds.dataset(lake / dataset.value, format="parquet", partitioning="hive").to_table()
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


async def harvest(
    world_info: dict[str, Any], lake: Path, version: str, window: HarvestWindow
) -> RunReport:
    toml_text, kwargs = demo_config({**world_info, "api_version": version}, lake, QUIET)
    return await run_harvest(parse_config(toml_text, **kwargs), window=window)


def insight_calls(log: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [e["params"] for e in log if e["edge"] == "account_insights" and e["status"] == 200]


@pytest.mark.anyio
async def test_v17_brief_metrics_over_95_days(tmp_path: Path) -> None:
    until = midnight(datetime.now(UTC).date())
    since = until - timedelta(days=95)
    async with run_simulator(SETTINGS) as sim:
        report = await harvest(sim.world_info(), tmp_path, "v17.0", HarvestWindow(since, until))
        world, log = sim.world, list(sim.request_log)
    acc = world.accounts[0]
    days = [since.date() + timedelta(days=n) for n in range(95)]

    assert read(tmp_path, Dataset.ERRORS) == []
    every = read(tmp_path, Dataset.ACCOUNT_INSIGHTS)
    assert {(r["metric"], r["period"]) for r in every} == {
        (metric, period) for metric, periods in {**BRIEF, **ADDED}.items() for period in periods
    }
    # The added daily total: one row per whole day, exactly the world's.
    added = {(r["metric"], r["end_time"]): r["value"] for r in every if r["metric"] in ADDED}
    assert added == {
        ("reposts", midnight(d) + DAY): world.account_metric_value(acc.id, "reposts", "day", d)
        for d in days
    }
    rows = [r for r in every if r["metric"] not in ADDED]
    assert {r["account_id"] for r in rows} == {acc.id}
    assert {r["api_version"] for r in rows} == {"v17.0"}

    # Time series: one exact row per day and period, 95 days each.
    series = {
        (r["metric"], r["period"], r["end_time"]): r["value"]
        for r in rows
        if r["period"] != "lifetime"
    }

    def served(metric: str, d: date) -> bool:
        """Meta keeps follower_count and online_followers for the last 30 days only."""
        return datetime(d.year, d.month, d.day, 7, tzinfo=UTC).timestamp() >= (
            world.account_data_from(metric)
        )

    want = {
        (metric, period, datetime(d.year, d.month, d.day, 7, tzinfo=UTC)): (
            world.account_metric_value(acc.id, metric, period, d)
        )
        for metric, periods in BRIEF.items()
        for period in periods
        if period != "lifetime"
        for d in days
        if served(metric, d)
    }
    assert series == want
    assert len([r for r in rows if r["period"] != "lifetime"]) == len(want)

    # online_followers: one row per day and hour, exactly the world's.
    online = {
        (r["end_time"].date(), r["dimension_value"]): r["value"]
        for r in rows
        if r["metric"] == "online_followers"
    }
    assert {r["dimension"] for r in rows if r["metric"] == "online_followers"} == {"hour"}
    assert online == {
        (d, hour): n
        for d in days
        if served("online_followers", d)
        for hour, n in hour_map(world.seed, acc, d).items()
    }

    # Lifetime maps: one row per key, summing to the audience the world has.
    for metric, dimension in AUDIENCE.items():
        found = [r for r in rows if r["metric"] == metric]
        assert {r["dimension"] for r in found} == {dimension}
        assert sum(r["value"] for r in found) == acc.followers_count
    gender_age = {r["dimension_value"] for r in rows if r["metric"] == "audience_gender_age"}
    assert "18-24,F" in gender_age
    assert gender_age <= {
        f"{age},{gender}"
        for gender in DIMENSION_VALUES["gender"]
        for age in DIMENSION_VALUES["age"]
    }

    # 95 days in windows of at most 30: four requests per series, covering the window once.
    calls = insight_calls(log)
    for period in ("day", "week", "days_28"):
        for metric in (m for m, periods in BRIEF.items() if period in periods):
            asked = sorted(
                (int(c["since"]), int(c["until"]))
                for c in calls
                if c["period"] == period and metric in c["metric"].split(",")
            )
            assert len(asked) == 4, (metric, period)
            assert asked[0][0] == int(since.timestamp())
            assert asked[-1][1] == int(until.timestamp())
            assert all(a[1] == b[0] for a, b in itertools.pairwise(asked))
            assert all(u - s <= 30 * 86_400 for s, u in asked)
    online_calls = [c for c in calls if c["metric"] == "online_followers"]
    assert len(online_calls) == 4
    assert report.rows[Dataset.ACCOUNT_INSIGHTS.value] == len(every)


@pytest.mark.anyio
async def test_current_metrics_totals_breakdowns_and_demographics(tmp_path: Path) -> None:
    until = midnight(datetime.now(UTC).date())
    since = until - timedelta(days=3)
    async with run_simulator(SETTINGS) as sim:
        await harvest(sim.world_info(), tmp_path, "v25.0", HarvestWindow(since, until))
        world = sim.world
    acc = world.accounts[0]
    rows = read(tmp_path, Dataset.ACCOUNT_INSIGHTS)
    live = {
        row.metric: row
        for row in validity.ACCOUNT_METRICS
        if validity.account_metric(row.metric, 25, None) is row
    }

    # total_value metrics: one total per day, exactly the world's value for that day.
    total_metrics = {m for m, row in live.items() if row.style == "total"}
    totals = [r for r in rows if r["metric"] in total_metrics and r["dimension"] is None]
    assert total_metrics <= {r["metric"] for r in totals}
    for r in totals:
        day = (r["end_time"] - timedelta(days=1)).date()
        assert r["value"] == world.account_metric_value(acc.id, r["metric"], "day", day)
    assert len({(r["metric"], r["end_time"]) for r in totals}) == len(totals)
    assert {r["metric"] for r in totals if r["end_time"] == until} >= total_metrics

    # Breakdown rows sum to their total; keys the simulator refuses cost one error row each.
    by_total = {(r["metric"], r["end_time"]): r["value"] for r in totals}
    broken = [r for r in rows if r["metric"] in total_metrics and r["dimension"] is not None]
    assert broken
    sums: dict[tuple[Any, ...], int] = {}
    for r in broken:
        assert r["dimension"] in live[r["metric"]].breakdowns
        key = (r["metric"], r["end_time"], r["dimension"])
        sums[key] = sums.get(key, 0) + r["value"]
    assert all(total == by_total[key[:2]] for key, total in sums.items())
    errors = read(tmp_path, Dataset.ERRORS)
    assert {e["stage"] for e in errors} <= {"breakdown_unsupported"}
    refused = {
        e["message"].split("breakdown ")[1].split(" ")[0] + "/" + e["message"].split()[-1]
        for e in errors
    }
    assert len(refused) == len(errors)
    assert all(key.split("/")[0] not in live[key.split("/")[1]].breakdowns for key in refused)

    # reach, a series and a total with breakdowns: one plain row per day (the series'), and of
    # its totals only the breakdown rows, each key's summing to the world's day.
    reach = [r for r in rows if r["metric"] == "reach"]
    plain = [r["end_time"] for r in reach if r["dimension"] is None and r["period"] == "day"]
    assert len(plain) == len({t.date() for t in plain}) == 3
    assert all((t.hour, t.minute) == (7, 0) for t in plain)
    split = [r for r in reach if r["dimension"] is not None]
    assert {r["dimension"] for r in split} == {"follow_type", "media_product_type"}
    reach_sums: dict[tuple[Any, ...], int] = {}
    for r in split:
        key = (r["end_time"], r["dimension"])
        reach_sums[key] = reach_sums.get(key, 0) + r["value"]
    for (end, _), total in reach_sums.items():
        day = (end - timedelta(days=1)).date()
        assert total == world.account_metric_value(acc.id, "reach", "day", day)

    # Demographics: per breakdown and timeframe, summing to the audience the simulator has.
    demographics = [r for r in rows if r["metric"].endswith("_demographics")]
    frames = {r["period"] for r in demographics}
    assert frames == {"lifetime:this_week", "lifetime:this_month"}
    for metric in ("follower_demographics", "engaged_audience_demographics"):
        base = (
            acc.followers_count if metric == "follower_demographics" else acc.followers_count // 3
        )
        for frame in frames:
            timeframe = frame.split(":")[1]
            for key in ("age", "gender", "country", "city"):
                got = {
                    r["dimension_value"]: r["value"]
                    for r in demographics
                    if (r["metric"], r["period"], r["dimension"]) == (metric, frame, key)
                }
                salt = name_key(metric + timeframe)
                want = segment_counts(world.seed, acc, salt, list(DIMENSION_VALUES[key]), base)
                assert got == want
                assert sum(got.values()) == base

    # The lake as DuckDB sees it: fixed schema, no duplicate natural keys.
    glob = f"{tmp_path}/account_insights/**/*.parquet"
    file_schema = ds.dataset(tmp_path / "account_insights", format="parquet").schema
    assert file_schema.remove_metadata() == SCHEMAS[Dataset.ACCOUNT_INSIGHTS].remove_metadata()
    duplicates = duckdb.execute(
        "SELECT metric, period, end_time, dimension, dimension_value, count(*) "
        f"FROM read_parquet('{glob}', hive_partitioning = true) GROUP BY ALL HAVING count(*) > 1"
    ).fetchall()
    assert duplicates == []


@pytest.mark.anyio
async def test_rejected_metrics_are_dropped_once_and_dead_tokens_stop(tmp_path: Path) -> None:
    """Under --as-of 2025-04-21 Meta rejects most brief metrics even at v17: each costs one
    `metric_unsupported` row for the run, the rest are still harvested; the expired account's
    token is never used for account insights."""
    settings = SimulatorSettings(seed=3, accounts=3, media_per_account=2, as_of=date(2025, 4, 21))
    until = midnight(datetime.now(UTC).date())
    window = HarvestWindow(until - timedelta(days=5), until)
    async with run_simulator(settings) as sim:
        await harvest(sim.world_info(), tmp_path, "v17.0", window)
        world, log = sim.world, list(sim.request_log)
    asked = {**BRIEF, **ADDED}
    gone = {m for m in asked if validity.account_metric(m, 17, date(2025, 4, 21)) is None}
    kept = set(asked) - gone
    assert gone and kept
    errors = read(tmp_path, Dataset.ERRORS)
    dropped = [e for e in errors if e["stage"] == "metric_unsupported"]
    assert sorted(e["message"].split()[1] for e in dropped) == sorted(gone)
    rows = read(tmp_path, Dataset.ACCOUNT_INSIGHTS)
    live = [a for a in world.accounts if not a.token_expired]
    assert {(r["account_id"], r["metric"]) for r in rows} == {(a.id, m) for a in live for m in kept}
    expired = world.expired_token_account
    assert expired is not None
    token = hashlib.sha256(expired.token.encode()).hexdigest()
    assert [e["edge"] for e in log if e["token_sha256"] == token] == ["media"]


@pytest.mark.parametrize(
    ("days", "spans"),
    [(95, [30, 30, 30, 5]), (30, [30]), (31, [30, 1]), (1, [1]), (0, [])],
)
def test_split_window_cuts_30_day_windows(days: int, spans: list[int]) -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    windows = split_window(now - timedelta(days=days), now, now=now)
    assert [(u - s).days for s, u in windows] == spans


def test_split_window_clips_retention_and_future() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    windows = split_window(now - RETENTION - timedelta(days=50), now + timedelta(days=9), now=now)
    assert windows[0][0] == now - RETENTION
    assert windows[-1][1] == now


NOW = datetime(2026, 11, 29, 18, 43, 7, 423171, tzinfo=UTC)


@pytest.mark.parametrize(
    ("since", "until", "first", "last"),
    [
        # Older than retention: the first full day Meta keeps, not now - 730 days to the second.
        (datetime(2024, 1, 1, tzinfo=UTC), None, datetime(2024, 11, 30, tzinfo=UTC), NOW),
        # Times of day widen to whole days; the open day ends at now.
        (datetime(2026, 11, 1, 9, 30, tzinfo=UTC), None, datetime(2026, 11, 1, tzinfo=UTC), NOW),
        (
            datetime(2026, 10, 1, tzinfo=UTC),
            datetime(2026, 10, 5, 0, 0, 1, tzinfo=UTC),
            datetime(2026, 10, 1, tzinfo=UTC),
            datetime(2026, 10, 6, tzinfo=UTC),
        ),
        (
            datetime(2026, 10, 1, tzinfo=UTC),
            datetime(2026, 10, 5, tzinfo=UTC),
            datetime(2026, 10, 1, tzinfo=UTC),
            datetime(2026, 10, 5, tzinfo=UTC),
        ),
        # An until in the open day: its day ends at now.
        (
            datetime(2026, 11, 20, tzinfo=UTC),
            datetime(2026, 11, 29, 12, tzinfo=UTC),
            datetime(2026, 11, 20, tzinfo=UTC),
            NOW,
        ),
        # The default window (now - 30 days) starts at the midnight before.
        (NOW - DEFAULT_WINDOW, None, datetime(2026, 10, 30, tzinfo=UTC), NOW),
        # Another timezone is the same instant.
        (
            datetime(2026, 11, 2, 1, tzinfo=timezone(timedelta(hours=5))),
            None,
            datetime(2026, 11, 1, tzinfo=UTC),
            NOW,
        ),
    ],
)
def test_windows_are_calendar_days(
    since: datetime, until: datetime | None, first: datetime, last: datetime
) -> None:
    windows = split_window(since, until or NOW, now=NOW)
    assert (windows[0][0], windows[-1][1]) == (first, last)
    assert all(s.astimezone(UTC).time() == time() for s, _ in windows)
    assert all(u.astimezone(UTC).time() == time() for _, u in windows[:-1])


moments = st.datetimes(
    min_value=datetime(2023, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)
)


@given(since=moments, until=moments, now=moments)
def test_windows_tile_the_window_in_whole_days(
    since: datetime, until: datetime, now: datetime
) -> None:
    """Whatever the bounds: consecutive windows without gap or overlap, at most 30 days each,
    every edge a UTC midnight but an end at now, nothing before retention or after now; the
    daily totals of each window tile it the same way."""
    windows = split_window(since, until, now=now)
    for (_, stop), (start, _) in itertools.pairwise(windows):
        assert stop == start
    edges = [s for s, _ in windows] + [u for _, u in windows]
    assert all(e.time() == time() or e == now for e in edges)
    for start, stop in windows:
        assert now - RETENTION <= start < stop <= now
        assert stop - start <= MAX_SPAN
        days = split_window(start, stop, now=now, span=DAY)
        assert days[0][0] == start and days[-1][1] == stop
        assert all(a[1] == b[0] for a, b in itertools.pairwise(days))
        assert all(u - s <= DAY for s, u in days)
    if windows:
        # The first window covers since's whole day, or starts at the first full day retained.
        start, end = windows[0][0], windows[-1][1]
        assert since - DAY < start <= since or now - RETENTION <= start < now - RETENTION + DAY
        # The last covers until's whole day, or ends at now.
        assert until <= end < until + DAY or end == now


def test_pieces_are_the_windows_then_the_window_less_requests() -> None:
    metrics = load_catalog().account_metrics_for(ApiVersion.parse("v25.0"))
    since = datetime(2026, 9, 1, tzinfo=UTC)
    pieces = plan_pieces(metrics, since, NOW, now=NOW)
    windows = split_window(since, NOW, now=NOW)
    assert [(p.since, p.until) for p in pieces] == [*windows, (None, None)]
    assert [p.key for p in pieces][-1] == "lifetime"
    for piece in pieces[:-1]:
        assert piece.requests
        assert all(
            piece.since <= r.since < r.until <= piece.until  # type: ignore[operator]
            for r in piece.requests
        )
    assert {r.kind for r in pieces[-1].requests} == {"demographics"}
    flat = plan_requests(metrics, since, NOW, now=NOW)
    assert flat == [r for p in pieces for r in p.requests]
    assert len(set(flat)) == len(flat)


def test_reach_as_a_total_is_asked_for_its_breakdowns_only() -> None:
    """reach is a daily series and a total with breakdowns: the total requests land only the
    breakdown rows (`skip_totals`), as a plain total row would double the series' day."""
    metrics = load_catalog().account_metrics_for(ApiVersion.parse("v25.0"))
    since = NOW - timedelta(days=3)
    flat = plan_requests(metrics, since, NOW, now=NOW)
    reach = [r for r in flat if r.kind == "total" and "reach" in r.metrics]
    assert {r.breakdown for r in reach} == {"follow_type", "media_product_type"}
    assert all("reach" in r.skip_totals for r in reach)
    assert len(reach) == 2 * len(split_window(since, NOW, now=NOW, span=DAY))
    assert all(not r.skip_totals for r in flat if r.kind == "total" and "reach" not in r.metrics)
    plain = plan_requests(metrics, since, NOW, now=NOW, breakdowns=False)
    totals = [r for r in plain if r.kind == "total"]
    assert totals and not [r for r in totals if "reach" in r.metrics]


def test_default_window_is_the_last_30_days() -> None:
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    assert account_window(None, None, now=now) == (now - DEFAULT_WINDOW, now)
    until = now - timedelta(days=3)
    assert account_window(None, until, now=now) == (until - DEFAULT_WINDOW, until)


def test_gender_age_keys_split_into_age_and_gender() -> None:
    reply = {
        "data": [
            {
                "name": "audience_gender_age",
                "period": "lifetime",
                "values": [
                    {"value": {"F.18-24": 3, "M.65+": 2}, "end_time": "2024-01-02T07:00:00+0000"}
                ],
            }
        ]
    }
    rows = parse_account_reply(reply, "audience", ["audience_gender_age"])
    assert [(r[3], r[4], r[5]) for r in rows] == [
        ("age,gender", "18-24,F", 3),
        ("age,gender", "65+,M", 2),
    ]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(
    reply=st.fixed_dictionaries({"data": st.lists(json_values, max_size=3)}) | json_values,
    kind=st.sampled_from(["series", "online", "audience", "total", "demographics"]),
)
def test_parser_is_total(reply: Any, kind: str) -> None:
    with contextlib.suppress(MalformedReply):
        parse_account_reply(reply, kind, ["reach", ""], timeframe="this_week")


def test_world_exposes_planted_token_troubles() -> None:
    world = World(7, 5, 2)
    assert world.expired_token_account is world.accounts[4]
    assert world.permission_missing_account is world.accounts[3]
    assert world.expiring_token_account is world.accounts[2]


# A backfill's clock at an odd time of day, and sweeps after it: later that day, the next day.
BACKFILL_AT = datetime(2026, 11, 29, 18, 43, 7, 423171, tzinfo=UTC)
SWEEPS = {
    "same day": datetime(2026, 11, 29, 22, 15, tzinfo=UTC),
    "next day": datetime(2026, 11, 30, 9, 30, tzinfo=UTC),
}


async def run_at(lake: Path, clock: datetime, window: HarvestWindow | None) -> RunReport:
    """One job on the world as it is at `clock`: a backfill of `window`, or a sweep."""
    settings = replace(SETTINGS, now=clock)
    async with run_simulator(settings) as sim:
        extra = {**QUIET, "harvest": {**QUIET["harvest"], "breakdowns": False}}
        toml_text, kwargs = demo_config({**sim.world_info(), "api_version": "v25.0"}, lake, extra)
        config = parse_config(toml_text, **kwargs)
        if window is None:
            return await run_harvest(config, mode="sweep", now=clock)
        return await run_harvest(config, window=window, now=clock)


@pytest.mark.anyio
@pytest.mark.parametrize("sweep", list(SWEEPS))
async def test_a_backfill_older_than_retention_and_a_sweep_tile_calendar_days(
    tmp_path: Path, sweep: str
) -> None:
    """`--since` long before Meta's retention, then a sweep: every day of every daily series and
    total is in the settled lake once (per day, the newest snapshot that has it: an older
    snapshot keeps what it saw), totals are whole UTC days but the open day, and no day between
    the first one Meta keeps and the sweep's is missing."""
    lake = tmp_path / "lake"
    report = await run_at(lake, BACKFILL_AT, HarvestWindow(datetime(2024, 1, 1, tzinfo=UTC)))
    assert report.exit_code == 0
    end = SWEEPS[sweep]
    assert (await run_at(lake, end, None)).exit_code == 0

    live = [r for r in validity.ACCOUNT_METRICS if validity.account_metric(r.metric, 25, None) is r]
    totals = sorted(r.metric for r in live if r.style == "total")
    assert totals
    con = duckdb.connect()
    # Per metric, period and day, the rows of the newest snapshot holding that day; a daily row
    # closing at midnight is the day before it, one closing at another time is its own day.
    view = f"""
        SELECT metric, period, end_time, value, snapshot_date,
               CAST(end_time - INTERVAL 1 MICROSECOND AS DATE) AS day
        FROM read_parquet('{lake}/account_insights/**/*.parquet', hive_partitioning = true)
        WHERE dimension IS NULL AND period IN ('day', 'week', 'days_28')
        QUALIFY snapshot_date = max(snapshot_date)
            OVER (PARTITION BY metric, period, CAST(end_time - INTERVAL 1 MICROSECOND AS DATE))
    """
    doubled = con.execute(
        f"SELECT metric, period, day, count(*) FROM ({view}) GROUP BY ALL HAVING count(*) > 1"
    ).fetchall()
    assert doubled == []

    first = midnight((BACKFILL_AT - RETENTION).date()) + DAY  # the oldest full day Meta keeps
    days = [first.date() + timedelta(days=n) for n in range((end.date() - first.date()).days + 1)]
    world = World(SETTINGS.seed, SETTINGS.accounts, SETTINGS.media_per_account)
    acc = world.accounts[0]
    for metric in totals:
        found = con.execute(
            f"SELECT day, end_time, value FROM ({view}) "
            f"WHERE metric = '{metric}' AND period = 'day' ORDER BY day"
        ).fetchall()
        assert [d for d, _, _ in found] == days, metric
        ends = [e for _, e, _ in found]
        # Whole days, each closing at the midnight after it; the sweep's open day at its clock.
        assert ends == [midnight(d) + DAY for d in days[:-1]] + [end], metric
        for day, _, value in found[:-1]:
            assert value == world.account_metric_value(acc.id, metric, "day", day), (metric, day)
    # Time series: one row per day from the first Meta keeps (for follower_count and
    # online_followers the last 30 days, as the backfill's world says) to the sweep's.
    then = World(SETTINGS.seed, SETTINGS.accounts, SETTINGS.media_per_account, now=BACKFILL_AT)

    def first_kept(metric: str) -> date:
        oldest = datetime.fromtimestamp(then.account_data_from(metric), UTC)
        day = max(first, midnight(oldest.date())).date()
        # A daily row closes at 07:00 of its day (the simulator's end_time).
        return (
            day if datetime(day.year, day.month, day.day, 7, tzinfo=UTC) >= oldest else (day + DAY)
        )

    series = con.execute(
        f"SELECT metric, period, list(day ORDER BY day) FROM ({view}) "
        f"WHERE metric NOT IN ({', '.join(repr(m) for m in totals)}) GROUP BY ALL"
    ).fetchall()
    assert series
    for metric, period, got in series:
        assert got == [d for d in days if d >= got[0]], (metric, period)
        assert got[0] == first_kept(metric), (metric, period)


@pytest.mark.anyio
async def test_pieces_done_before_are_skipped_and_count_as_they_ended(tmp_path: Path) -> None:
    """The stage runs only the pieces no earlier run committed, hands each over when done, and
    says the account's account insights are complete only if every piece is, earlier ones too."""
    until = midnight(datetime.now(UTC).date())
    since = until - timedelta(days=45)  # two windows and the window-less piece
    async with run_simulator(SETTINGS) as sim:
        toml_text, kwargs = demo_config(sim.world_info(), tmp_path, QUIET)
        config = parse_config(toml_text, **kwargs)
        account = config.accounts[0]
        client = GraphClient(config.graph, config.limits, config.retry)
        async with client:
            stage = AccountInsightsStage(
                client,
                Refusals(config.graph.api_version),
                RunRows(run_id="r", api_version=config.graph.api_version),
                api_version=config.graph.api_version,
                breakdowns=False,
            )
            ids = [piece_id(account.id, p) for p in stage.plan(since, until)]
            assert len(ids) == 3 and ids[-1] == f"account_insights:{account.id}:lifetime"
            sent: list[tuple[str, bool]] = []

            async def send(unit: str, blocks: list[Rows], complete: bool) -> None:
                assert blocks
                sent.append((unit, complete))

            earlier = {ids[0]: False}  # an earlier run committed it, incomplete
            assert not await stage.harvest(account, since, until, done=earlier.get, send=send)
            assert sent == [(ids[1], True), (ids[2], True)]
            sent.clear()
            calls = len(sim.request_log)
            done = dict.fromkeys(ids, True)
            assert await stage.harvest(account, since, until, done=done.get, send=send)
            assert sent == [] and len(sim.request_log) == calls


def http_requests(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The HTTP requests of account insights in a request log: batch POSTs and single GETs
    (a batch's ops are logged beside it, one entry each, as Meta counts them)."""
    return [e for e in log if not e["batch"] and e["edge"] in ("batch", "account_insights")]


@pytest.mark.anyio
@pytest.mark.parametrize("batch_size", [50, 0])
async def test_30_days_take_a_few_batch_posts_with_the_same_rows(
    tmp_path: Path, batch_size: int
) -> None:
    """One account's default 30-day window (its ~170 requests, three pieces) in at most 5 HTTP
    requests with batching on, every op of them answered; the rows are those of one GET each."""
    lakes = {size: tmp_path / str(size) for size in (batch_size, 1)}
    logs = {}
    clock = datetime.now(UTC)  # both runs' open day ends at the same moment
    for size, lake in lakes.items():
        async with run_simulator(replace(SETTINGS, now=clock)) as sim:
            extra = {"harvest": {**QUIET["harvest"], "batch_size": size}}
            toml_text, kwargs = demo_config(
                {**sim.world_info(), "api_version": "v22.0"}, lake, extra
            )
            report = await run_harvest(parse_config(toml_text, **kwargs), now=clock)
            logs[size] = list(sim.request_log)
        assert report.exit_code == 0
    ops = [e for e in logs[batch_size] if e["batch"] and e["edge"] == "account_insights"]
    singles = insight_calls(logs[1])
    assert len(singles) > 150
    if batch_size:
        assert len(http_requests(logs[batch_size])) <= 5
        assert len(ops) == len(singles) and all(e["status"] == 200 for e in ops)
    else:
        assert len(http_requests(logs[batch_size])) == len(singles)

    def content(lake: Path) -> dict[tuple[Any, ...], Any]:
        rows = read(lake, Dataset.ACCOUNT_INSIGHTS)
        keyed = {
            (r["metric"], r["period"], r["end_time"], r["dimension"], r["dimension_value"]): (
                r["value"]
            )
            for r in rows
        }
        assert len(keyed) == len(rows)
        return keyed

    assert content(lakes[batch_size]) == content(lakes[1])
    assert read(lakes[batch_size], Dataset.ERRORS) == read(lakes[1], Dataset.ERRORS) == []


@pytest.mark.anyio
async def test_batched_under_a_rate_limit_storm_and_a_dead_token(tmp_path: Path) -> None:
    """Batching on, an account budget far below what the window costs: the rows are those of a
    healthy run, no op is sent into an account's known block, none after a 190 (the expired
    account's token is used for its listing only)."""
    until = midnight(datetime.now(UTC).date())
    window = HarvestWindow(until - timedelta(days=8), until)
    world = SimulatorSettings(seed=3, accounts=3, media_per_account=2)
    storm = LimitSettings(account_budget=25, window_seconds=1.0, minute_seconds=0.05)
    settings: dict[str, dict[str, Any]] = {
        "harvest": {**QUIET["harvest"], "batch_size": 50},
        "retry": {"max_attempts": 8, "base_delay_seconds": 0.01, "max_delay_seconds": 0.1},
        "limits": {
            "probe_seconds": 0.02,
            "probe_max_seconds": 0.5,
            "max_requests_per_account": 4,
            "max_requests_in_flight": 8,
            "account_window_seconds": 1.0,
            "app_window_seconds": 1.0,
            "regain_unit_seconds": 0.05,
        },
    }
    found = {}
    for name, sim_settings in {"healthy": world, "storm": replace(world, limits=storm)}.items():
        async with run_simulator(sim_settings) as sim:
            info = {**sim.world_info(), "api_version": "v22.0"}
            toml_text, kwargs = demo_config(info, tmp_path / name, settings)
            await run_harvest(parse_config(toml_text, **kwargs), window=window)
            found[name] = (sim.stats(), list(sim.request_log), sim.world)
        rows = read(tmp_path / name, Dataset.ACCOUNT_INSIGHTS)
        found[name] += (
            {
                (r["account_id"], r["metric"], r["end_time"], r["dimension_value"], r["value"])
                for r in rows
            },
        )
    stats, log, sim_world, _ = found["storm"]
    assert found["storm"][3] == found["healthy"][3]
    assert stats["calls_total"] > 2 * 25
    # The gate paces the POSTs: at most a few throttling errors per account, none into a block.
    assert len([e for e in log if e["error_code"] in (4, 17, 80002)]) <= 4 * 3
    assert stats["rejected_while_blocked"] == 0
    assert not stats["calls_after_190"]
    expired = sim_world.expired_token_account
    assert expired is not None
    token = hashlib.sha256(expired.token.encode()).hexdigest()
    assert [e["edge"] for e in log if e["token_sha256"] == token] == ["media"]
    assert any(e["batch"] for e in log)


@pytest.mark.anyio
async def test_account_insights_go_beside_the_listing_and_media_insights(tmp_path: Path) -> None:
    """An account's account insights start once its listing's first page came, not after its
    last: with a listing of twelve pages, their POSTs go while it still pages; the account
    insights of the run are those of a run without media."""
    settings = replace(SETTINGS, media_per_account=60)
    lakes = {"all": tmp_path / "all", "quiet": tmp_path / "quiet"}
    clock = datetime.now(UTC)
    async with run_simulator(replace(settings, now=clock)) as sim:
        extra = {"harvest": {"stories": False, "media_page_size": 5}}
        toml_text, kwargs = demo_config(sim.world_info(), lakes["all"], extra)
        report = await run_harvest(parse_config(toml_text, **kwargs), now=clock)
        log = list(sim.request_log)
    async with run_simulator(replace(settings, now=clock)) as sim:
        toml_text, kwargs = demo_config(sim.world_info(), lakes["quiet"], QUIET)
        await run_harvest(parse_config(toml_text, **kwargs), now=clock)
    assert report.exit_code == 0
    listing = [i for i, e in enumerate(log) if e["edge"] == "media" and not e["batch"]]
    account_ops = [i for i, e in enumerate(log) if e["edge"] == "account_insights"]
    assert len(listing) == 12
    assert account_ops[0] < listing[-1]
    assert report.rows[Dataset.MEDIA_INSIGHTS.value] > 0

    def content(lake: Path) -> set[tuple[Any, ...]]:
        rows = read(lake, Dataset.ACCOUNT_INSIGHTS)
        return {
            (r["metric"], r["period"], r["end_time"], r["dimension_value"], r["value"])
            for r in rows
        }

    assert content(lakes["all"]) == content(lakes["quiet"])


@pytest.mark.anyio
async def test_window_totals_one_call_per_group_and_window(tmp_path: Path) -> None:
    """`account_totals = "window"`: each total_value group is asked once per window (30 days at
    most), not once per day; its rows say `window:<first day>` and end at the window's end, each
    total the sum of the days it covers; `harvester plan` prices both ways, and this run costs
    what it priced."""
    until = midnight(datetime.now(UTC).date())
    since = until - timedelta(days=45)  # two windows: 30 days and 15
    window = HarvestWindow(since, until)
    extra = {"harvest": {**QUIET["harvest"], "account_totals": "window"}}
    async with run_simulator(SETTINGS) as sim:
        toml_text, kwargs = demo_config(
            {**sim.world_info(), "api_version": "v22.0"}, tmp_path, extra
        )
        config = parse_config(toml_text, **kwargs)
        plan = await make_plan(config, window)
        before = len(sim.request_log)
        report = await run_harvest(config, window=window)
        log, world = list(sim.request_log)[before:], sim.world
    assert report.exit_code == 0
    acc = world.accounts[0]
    live = {
        row.metric: row
        for row in validity.ACCOUNT_METRICS
        if validity.account_metric(row.metric, 22, None) is row
    }
    total_metrics = {m for m, row in live.items() if row.style == "total"}
    calls = [e for e in log if e["edge"] == "account_insights"]
    totals_calls = [c for c in calls if c["params"].get("metric_type") == "total_value"]
    windows = [(since, since + MAX_SPAN), (since + MAX_SPAN, until)]
    # Demographics are total_value too, but window-less (a timeframe instead).
    daily = [c["params"] for c in totals_calls if "timeframe" not in c["params"]]
    asked = Counter((int(c["since"]), int(c["until"])) for c in daily)
    # Five total_value groups (plain, and one per breakdown key) once per window.
    assert asked == {(int(s.timestamp()), int(u.timestamp())): 5 for s, u in windows}
    assert len(calls) == plan.account_calls_by_totals["window"] == plan.accounts[0].account_calls
    assert plan.account_calls_by_totals["day"] > 4 * plan.account_calls_by_totals["window"]

    rows = read(tmp_path, Dataset.ACCOUNT_INSIGHTS)
    totals = [r for r in rows if r["metric"] in total_metrics and r["dimension"] is None]
    assert {(r["period"], r["end_time"]) for r in totals} == {
        (f"window:{s.date().isoformat()}", u) for s, u in windows
    }
    for r in totals:
        start = next(s for s, u in windows if u == r["end_time"])
        days = [(start + timedelta(days=n)).date() for n in range((r["end_time"] - start).days)]
        want = sum(world.account_metric_value(acc.id, r["metric"], "day", d) for d in days)
        assert r["value"] == want, r["metric"]
    assert {r["metric"] for r in totals} == total_metrics
    assert len({(r["metric"], r["period"]) for r in totals}) == len(totals)


def test_account_totals_is_day_or_window(tmp_path: Path) -> None:
    info = {"base_url": "http://127.0.0.1:9", "accounts": [], "api_version": "v22.0"}
    toml_text, kwargs = demo_config(info, tmp_path, {"harvest": {"account_totals": "week"}})
    with pytest.raises(ConfigError) as caught:
        parse_config(toml_text, **kwargs)
    assert str(caught.value) == "demo: [harvest].account_totals: must be one of day, window"


@pytest.mark.anyio
async def test_account_totals_decide_the_job(tmp_path: Path) -> None:
    """A window-totals job is another job than a daily one (its rows differ), and the default
    leaves the job's spec as it was before the setting existed."""
    specs = {}
    async with run_simulator(SETTINGS) as sim:
        for mode in ("day", "window"):
            extra = {"harvest": {"account_totals": mode}}
            toml_text, kwargs = demo_config(sim.world_info(), tmp_path, extra)
            config = parse_config(toml_text, **kwargs)
            specs[mode] = job_spec(config, HarvestWindow(), "backfill", date(2026, 12, 1))
    assert specs["day"] != specs["window"]
    assert "account_totals" not in str(specs["day"])


@pytest.mark.anyio
@pytest.mark.parametrize("batch_size", [50, 0])
async def test_a_withdrawn_breakdown_costs_one_row_batched_or_not(
    tmp_path: Path, batch_size: int
) -> None:
    """Meta stops offering `views` by media_product_type while the catalogue still lists it:
    the requests of every day that asked it are refused together (batched: in the same POSTs),
    the metrics of a refused request are asked one by one, and the pair is dropped for the run
    with exactly one `breakdown_unsupported` row; every other row is the healthy run's, views'
    daily totals included (they come with its other breakdown)."""
    until = midnight(datetime.now(UTC).date())
    window = HarvestWindow(until - timedelta(days=10), until)
    extra = {"harvest": {**QUIET["harvest"], "batch_size": batch_size}}
    withdrawn = frozenset({("views", "media_product_type")})
    contents, logs, errors = {}, {}, {}
    for name, settings in {
        "healthy": SETTINGS,
        "withdrawn": replace(SETTINGS, withdrawn_breakdowns=withdrawn),
    }.items():
        lake = tmp_path / name
        async with run_simulator(settings) as sim:
            toml_text, kwargs = demo_config(
                {**sim.world_info(), "api_version": "v22.0"}, lake, extra
            )
            report = await run_harvest(parse_config(toml_text, **kwargs), window=window)
            logs[name] = list(sim.request_log)
        contents[name] = {
            (r["metric"], r["period"], r["end_time"], r["dimension"], r["dimension_value"]): r[
                "value"
            ]
            for r in read(lake, Dataset.ACCOUNT_INSIGHTS)
        }
        errors[name] = [
            (e["stage"], e["error_code"], e["message"]) for e in read(lake, Dataset.ERRORS)
        ]
        assert report.exit_code == (0 if name == "healthy" else 3)
    want = {
        k: v
        for k, v in contents["healthy"].items()
        if not (k[0] == "views" and k[3] == "media_product_type")
    }
    assert len(want) < len(contents["healthy"])
    assert contents["withdrawn"] == want
    assert errors["healthy"] == []
    assert errors["withdrawn"] == [
        (
            "breakdown_unsupported",
            100,
            "(#100) The breakdown media_product_type is not supported for the metric views",
        )
    ]
    ops = [e for e in logs["withdrawn"] if e["edge"] == "account_insights"]
    healthy_ops = [e for e in logs["healthy"] if e["edge"] == "account_insights"]
    refused = [e["params"] for e in ops if e["status"] != 200]
    assert {(p["breakdown"], "views" in p["metric"].split(",")) for p in refused} == {
        ("media_product_type", True)
    }
    if batch_size:
        # Every day's request went out before the first refusal came back: each is refused
        # once, then its views probe once (the other probes answer), at most.
        assert len(refused) <= 2 * 10
        assert len(ops) <= len(healthy_ops) + 10 * 8
    else:
        # The first day's request refused, its seven metrics asked one by one, views refused
        # alone; the other days ask the rest in one request, as before.
        assert [p["metric"].count(",") + 1 for p in refused] == [7, 1]
        assert len(ops) == len(healthy_ops) + 1 + 7


@pytest.mark.anyio
async def test_account_insights_wait_for_the_accounts_first_media_insights(tmp_path: Path) -> None:
    """The whole job, batching on: no account insights op of an account is received before its
    first media insights POST came back (at 200 ms latency, not within 200 ms of that reply), as
    the gate knows the account's budget only as >= 100 calls until then; and they go as soon as
    it did, beside the media POSTs sent then, not after the media of that first POST were done
    (whose conditional ops took a round trip more). Every account gets them."""
    settings = SimulatorSettings(
        seed=3, accounts=2, media_per_account=30, troubles=False, latency_ms=200.0
    )
    async with run_simulator(settings) as sim:
        extra = {"harvest": {"stories": False, "batch_size": 50}}
        toml_text, kwargs = demo_config(sim.world_info(), tmp_path, extra)
        report = await run_harvest(parse_config(toml_text, **kwargs))
        log, world = list(sim.request_log), sim.world
    assert report.exit_code == 0
    for account in world.accounts:
        token = hashlib.sha256(account.token.encode()).hexdigest()
        ours = [e for e in log if e["token_sha256"] == token and e["batch"]]
        media = [e["t"] for e in ours if e["edge"] == "insights"]
        insights = [e["t"] for e in ours if e["edge"] == "account_insights"]
        assert media and len(insights) > 30
        assert min(insights) - min(media) >= 0.199
        # The media POSTs sent once the first came back: received a latency after it or later
        # (logged as served, so the account's, sent beside them, may be served a little later).
        second = min(t for t in media if t >= min(media) + 0.199)
        assert min(insights) < second + 0.1
