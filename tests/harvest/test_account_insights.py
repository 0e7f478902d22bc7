"""Account insights end to end against the simulated Graph API, read back with real lake readers.

Expectations come from the simulator's world (`account_metric_value`, its map and demographic
functions) and its own validity tables, never from the harvester's catalogue.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.dataset as ds
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harvester.cli import demo_config
from harvester.config import parse_config
from harvester.graph.account_replies import parse_account_reply
from harvester.graph.errors import MalformedReply
from harvester.harvest.account_insights import (
    DEFAULT_WINDOW,
    RETENTION,
    account_window,
    split_window,
)
from harvester.harvest.pipeline import run_harvest
from harvester.harvest.report import RunReport
from harvester.lake.schema import SCHEMAS
from harvester.models import Dataset, HarvestWindow
from harvester.simulator import SimulatorSettings, World, run_simulator, validity
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
    rows = read(tmp_path, Dataset.ACCOUNT_INSIGHTS)
    assert {(r["metric"], r["period"]) for r in rows} == {
        (metric, period) for metric, periods in BRIEF.items() for period in periods
    }
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
    assert report.rows[Dataset.ACCOUNT_INSIGHTS.value] == len(rows)


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
    gone = {m for m in BRIEF if validity.account_metric(m, 17, date(2025, 4, 21)) is None}
    kept = set(BRIEF) - gone
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
