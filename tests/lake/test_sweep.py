"""Sweeps: a snapshot per day that readers prune by date, and a same-day sweep that replaces.

The simulated world is anchored at noon of each sweep's day, with one media per account per day,
so each sweep sees about `lookback_days` of recent media and the live stories.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow.dataset as ds
import pytest

from harvester.cli import demo_config, main
from harvester.config import Config, parse_config
from harvester.harvest.pipeline import run_harvest
from harvester.harvest.report import RunReport
from harvester.lake.fs import open_lake
from harvester.lake.sweep import sweep_windows
from harvester.models import Dataset
from harvester.simulator import SimulatorSettings, run_simulator

pytestmark = pytest.mark.anyio

DAYS = [date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)]
LOOKBACK = 3
IGNORED = ("run_id", "fetched_at", "fbtrace_id")


def world(day: date) -> SimulatorSettings:
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    return SimulatorSettings(seed=4, accounts=3, media_per_account=1095, now=noon)


def config(info: dict[str, Any], lake: Path) -> Config:
    settings = {"harvest": {"lookback_days": LOOKBACK}, "graph": {"api_version": "v21.0"}}
    toml_text, kwargs = demo_config(info, lake, settings)
    return parse_config(toml_text, **kwargs)


async def sweep(lake: Path, day: date, hour: int = 13) -> tuple[RunReport, Any]:
    async with run_simulator(world(day)) as sim:
        clock = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
        report = await run_harvest(config(sim.world_info(), lake), mode="sweep", now=clock)
        return report, sim.world


def content(lake: Path, dataset: Dataset) -> Counter[tuple[Any, ...]]:
    table = ds.dataset(lake / dataset.value, format="parquet", partitioning="hive").to_table()
    table = table.drop_columns([c for c in IGNORED if c in table.column_names])
    return Counter(zip(*table.to_pydict().values(), strict=True))


async def test_three_days_of_sweeps_keep_one_snapshot_per_day(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    expected: dict[str, set[str]] = {}
    for day in DAYS:
        report, sim_world = await sweep(lake, day)
        assert report.exit_code in (0, 3)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(days=LOOKBACK)
        expected[day.isoformat()] = {
            m.id
            for a in sim_world.accounts
            if not a.token_expired
            for m in [*sim_world.iter_media(a.id), *sim_world.stories(a.id)]
            if m.timestamp >= start
        }

    con = duckdb.connect()
    glob = f"{lake}/media/**/*.parquet"
    listed = con.execute(
        f"SELECT snapshot_date::VARCHAR, list(media_id) FROM read_parquet('{glob}', "
        "hive_partitioning = true) WHERE parent_id IS NULL GROUP BY 1"
    ).fetchall()
    assert {d: set(ids) for d, ids in listed} == expected
    assert all(len(ids) == len(set(ids)) for _, ids in listed)

    # Watching reach over the snapshots: a media posted before the first sweep is in all three.
    insights = f"{lake}/media_insights/**/*.parquet"
    series = con.execute(
        f"SELECT media_id, count(*) FROM read_parquet('{insights}', hive_partitioning = true) "
        "WHERE metric = 'reach' GROUP BY 1 HAVING count(DISTINCT snapshot_date) = 3"
    ).fetchall()
    assert series and all(n == 3 for _, n in series)

    # Account insights resume from the last committed day with a 2-day overlap.
    rows = con.execute(
        f"SELECT snapshot_date::VARCHAR, min(end_time) FROM read_parquet('{lake}/account_insights/"
        "**/*.parquet', hive_partitioning = true) WHERE period = 'day' GROUP BY 1 ORDER BY 1"
    ).fetchall()
    firsts = {d: t.astimezone(UTC).date() for d, t in rows}
    assert firsts[DAYS[0].isoformat()] >= DAYS[0] - timedelta(days=LOOKBACK)
    assert firsts[DAYS[1].isoformat()] >= DAYS[0] - timedelta(days=2)
    assert firsts[DAYS[2].isoformat()] >= DAYS[1] - timedelta(days=2)

    # Partition pruning: a query on one date never opens another date's files.
    poison = lake / "media_insights" / f"snapshot_date={DAYS[0]}" / "part-unreadable.parquet"
    poison.write_bytes(b"not a parquet file")
    last = DAYS[2].isoformat()
    count = con.execute(
        f"SELECT count(*) FROM read_parquet('{insights}', hive_partitioning = true) "
        f"WHERE snapshot_date = '{last}'"
    ).fetchone()
    assert count is not None and count[0] > 0
    frame = (
        pl.scan_parquet(insights, hive_partitioning=True)
        .filter(pl.col("snapshot_date") == DAYS[2])
        .select(pl.len())
        .collect()
    )
    assert frame.item() == count[0]
    with pytest.raises(duckdb.Error):
        con.execute(f"SELECT count(*) FROM read_parquet('{insights}')").fetchone()


async def test_a_second_sweep_on_the_same_day_replaces_the_first(tmp_path: Path) -> None:
    twice, once = tmp_path / "twice", tmp_path / "once"
    await sweep(twice, DAYS[0], hour=13)
    first_files = set(twice.rglob("*.parquet"))
    await sweep(twice, DAYS[0], hour=18)
    await sweep(once, DAYS[0], hour=18)

    for dataset in Dataset:
        assert content(twice, dataset) == content(once, dataset), dataset
    # The first sweep's files were superseded, not left beside the second's.
    assert not first_files & set(twice.rglob("*.parquet"))


def test_sweep_windows_reach_back_to_the_last_listing_and_reuse_the_day(tmp_path: Path) -> None:
    lake = open_lake(str(tmp_path))
    day = date(2026, 3, 20)
    lake.put_json(
        "_state/cursor.json",
        {
            "accounts": {
                "1": {"listed_at": "2026-03-05T10:00:00+00:00", "insights_until": None},
                "2": {"listed_at": "2026-03-19T10:00:00+00:00"},
                "3": {
                    "insights_until": "2026-03-19T10:00:00+00:00",
                    "day": {"date": "2026-03-20", "media_since": "A", "insights": "B"},
                },
            }
        },
    )
    windows = sweep_windows(lake, ["1", "2", "3", "4"], day, 7)
    lookback = "2026-03-13T00:00:00+00:00"
    assert windows == {
        # Not listed for 15 days: everything posted since (a day of slack) is new.
        "1": {"media_since": "2026-03-04T10:00:00+00:00", "insights_since": lookback},
        "2": {"media_since": lookback, "insights_since": lookback},
        # A second sweep today starts where today's first did.
        "3": {"media_since": "A", "insights_since": "B"},
        "4": {"media_since": lookback, "insights_since": lookback},
    }


def test_a_sweep_takes_no_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IG_TOKEN", "EAAtoken")
    config_file = tmp_path / "sweep.toml"
    accounts = "[[accounts]]\nid = '1784'\ntoken_env = 'IG_TOKEN'\n"
    config_file.write_text(f"[output]\npath = '{tmp_path / 'lake'}'\n{accounts}")
    argv = ["run", str(config_file), "--mode", "sweep", "--since", "2026-01-01"]
    assert main(argv) == 2
    assert not (tmp_path / "lake").exists()
