"""Competitors through business discovery, end to end against the simulated Graph API: the lake's
`accounts` and `media` rows of each competitor are the simulated world's values (null exactly
where the world omits a field), read by DuckDB and Polars; no insights request for their media;
an unknown username is one error row; nested media pages are followed; a dead via token hands
the competitor to the next account; a same-day rerun keeps one profile row per competitor."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from harvester.cli import demo_config
from harvester.config import Config, parse_config
from harvester.harvest.competitors import discovery_calls
from harvester.harvest.pipeline import run_harvest
from harvester.harvest.plan import make_plan
from harvester.harvest.report import RunReport
from harvester.lake.schema import SCHEMAS
from harvester.models import Dataset
from harvester.simulator import SimulatorSettings, World, run_simulator
from harvester.simulator.competitors import SimCompetitor

pytestmark = pytest.mark.anyio

# Few owned media, no insights and no owned profiles: what is under test is the competitors' part.
WORLD = SimulatorSettings(seed=5, accounts=3, media_per_account=4, competitors=4)
OFF = {"account_insights": False, "media_insights": False, "stories": False, "profiles": False}
# The profile columns of `accounts`, between account_id and source.
PROFILE_COLUMNS = tuple(SCHEMAS[Dataset.ACCOUNTS].names[1:9])


def config_for(
    info: dict[str, Any],
    lake: Path,
    competitors: list[str],
    *,
    harvest: dict[str, Any] | None = None,
    via: dict[str, str] | None = None,
) -> Config:
    text, kwargs = demo_config(info, lake, {"harvest": {**OFF, **(harvest or {})}})
    for name in competitors:
        text += f'[[competitors]]\nusername = "{name}"\n'
        if via and name in via:
            text += f'via = "{via[name]}"\n'
    return parse_config(text, **kwargs)


def parquet(lake: Path, dataset: str) -> str:
    return f"read_parquet('{lake}/{dataset}/**/*.parquet', hive_partitioning = true)"


def duck(lake: Path, query: str) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = duckdb.connect().sql(query).fetchall()
    return rows


def profile_query(lake: Path) -> str:
    columns = ", ".join(PROFILE_COLUMNS)
    return f"SELECT account_id, {columns}, source FROM {parquet(lake, 'accounts')}"


def want_profile(who: SimCompetitor) -> tuple[Any, ...]:
    return (who.id, *(getattr(who, c) for c in PROFILE_COLUMNS), "competitor")


def want_media(world: World, who: SimCompetitor, n: int) -> set[tuple[Any, ...]]:
    out = set()
    for m in range(min(n, who.media_count)):
        media = world.competitors.media(who.index, m)
        out.add(
            (
                who.id,
                media.id,
                None,
                media.media_type,
                media.media_product_type,
                media.timestamp,
                media.permalink,
                media.caption,
                media.like_count,
                media.comments_count,
                "competitor",
            )
        )
    return out


MEDIA_QUERY = (
    "SELECT account_id, media_id, parent_id, media_type, media_product_type, media_timestamp, "
    "permalink, caption, like_count, comments_count, source FROM {} WHERE source = 'competitor'"
)


async def test_competitors_land_as_the_world_has_them(tmp_path: Path) -> None:
    """Three known competitors and one unknown name; 30 media each, in pages of 12 (so three
    nested pages per competitor with enough media)."""
    names = ["competitor_0", "Competitor_1", "@competitor_3", "no_such_shop"]
    async with run_simulator(WORLD) as sim:
        info = sim.world_info()
        assert info["competitors"] == [f"competitor_{c}" for c in range(4)]
        config = config_for(
            info, tmp_path, names, harvest={"competitor_media": 30, "media_page_size": 12}
        )
        report = await run_harvest(config)
        world, log = sim.world, list(sim.request_log)

    known = [world.competitors.profile(c) for c in (0, 1, 3)]
    profiles = duck(tmp_path, profile_query(tmp_path) + " ORDER BY username")
    assert profiles == [want_profile(who) for who in known]
    # Null exactly where the world omits a field: some planted gaps are among these.
    assert any(who.website is None for who in known)
    assert any(who.website is not None for who in known)

    got_media = duck(tmp_path, MEDIA_QUERY.format(parquet(tmp_path, "media")))
    want = set().union(*(want_media(world, who, 30) for who in known))
    assert set(got_media) == want
    assert len(got_media) == len(want), "duplicate competitor media rows"
    assert any(row[8] is None for row in got_media)  # hidden like counts land as null
    assert any(row[7] is None for row in got_media)  # so do missing captions

    # Polars reads the same lake: newest 30 per competitor, counts as the world has them.
    frame = pl.scan_parquet(f"{tmp_path}/media/**/*.parquet", hive_partitioning=True)
    per_competitor = (
        frame.filter(pl.col("source") == "competitor")
        .group_by("account_id")
        .agg(pl.len().alias("n"), pl.col("comments_count").sum().alias("comments"))
        .collect()
    )
    assert {r["account_id"]: (r["n"], r["comments"]) for r in per_competitor.to_dicts()} == {
        who.id: (
            min(30, who.media_count),
            sum(
                world.competitors.media(who.index, m).comments_count
                for m in range(min(30, who.media_count))
            ),
        )
        for who in known
    }

    # The unknown name is one error row, and the run went on to the end.
    errors = duck(
        tmp_path,
        f"SELECT object_id, stage, error_code, error_subcode FROM {parquet(tmp_path, 'errors')}"
        " WHERE stage = 'competitors'",
    )
    assert errors == [("no_such_shop", "competitors", 110, 2207013)]
    assert report.status == "done"
    assert report.rows["accounts"] == 3

    # Calls: the first page with the profile, then pages of 12 while media remain (30 wanted).
    discovery = [e for e in log if e["edge"] == "business_discovery"]
    pages = {who.username: -(-min(30, who.media_count) // 12) or 1 for who in known}
    by_name: dict[str, int] = {}
    for entry in discovery:
        name = entry["params"]["fields"].split("username(", 1)[1].split(")", 1)[0]
        by_name[name] = by_name.get(name, 0) + 1
        assert entry["account_id"] is None  # charged to the app: no BUC account on the call
    assert by_name == {**pages, "no_such_shop": 1}
    assert any(n >= 3 for n in pages.values())  # nested paging was followed
    # No insights (or any other) request ever names a competitor's media.
    competitor_media = {row[1] for row in got_media}
    assert not [e for e in log if e["object_id"] in competitor_media]
    assert not [e for e in log if e["edge"] == "insights"]


async def test_profile_only_and_via(tmp_path: Path) -> None:
    """competitor_media = 0: one call, the profile, no media; `via` picks the asking account."""
    async with run_simulator(WORLD) as sim:
        info = sim.world_info()
        second = info["accounts"][1]["id"]
        config = config_for(
            info,
            tmp_path,
            ["competitor_2"],
            harvest={"competitor_media": 0},
            via={"competitor_2": second},
        )
        await run_harvest(config)
        world, log = sim.world, list(sim.request_log)
    who = world.competitors.profile(2)
    assert duck(tmp_path, profile_query(tmp_path)) == [want_profile(who)]
    assert duck(tmp_path, MEDIA_QUERY.format(parquet(tmp_path, "media"))) == []
    (call,) = [e for e in log if e["edge"] == "business_discovery"]
    assert call["object_id"] == second
    assert "media.limit" not in call["params"]["fields"]  # no media edge asked


async def test_a_dead_via_token_hands_the_competitor_to_the_next_account(tmp_path: Path) -> None:
    async with run_simulator(WORLD) as sim:
        info = sim.world_info()
        world = sim.world
        dead = world.expired_token_account
        assert dead is not None
        config = config_for(
            info,
            tmp_path,
            ["competitor_1"],
            harvest={"competitor_media": 5},
            via={"competitor_1": dead.id},
        )
        report = await run_harvest(config)
        log = list(sim.request_log)
    asked = [(e["object_id"], e["status"]) for e in log if e["edge"] == "business_discovery"]
    assert asked[-1] == (world.accounts[0].id, 200)
    assert all(status == 400 for _, status in asked[:-1])
    assert {obj for obj, _ in asked[:-1]} <= {dead.id}
    assert duck(tmp_path, f"SELECT username FROM {parquet(tmp_path, 'accounts')}") == [
        ("competitor_1",)
    ]
    assert duck(
        tmp_path,
        f"SELECT count(*) FROM {parquet(tmp_path, 'errors')} WHERE stage = 'competitors'",
    ) == [(0,)]
    assert report.accounts_failed == 1  # the dead account itself, once


async def test_no_usable_account_is_one_error_row(tmp_path: Path) -> None:
    async with run_simulator(WORLD) as sim:
        info = sim.world_info()
        dead = sim.world.expired_token_account
        assert dead is not None
        only_dead = {**info, "accounts": [a for a in info["accounts"] if a["id"] == dead.id]}
        report = await run_harvest(config_for(only_dead, tmp_path, ["competitor_0"]))
    rows = duck(
        tmp_path,
        f"SELECT account_id, object_id, error_code FROM {parquet(tmp_path, 'errors')}"
        " WHERE stage = 'competitors'",
    )
    assert rows == [(dead.id, "competitor_0", 190)]
    assert report.exit_code == 3


async def test_same_day_rerun_keeps_one_profile_row_per_competitor(tmp_path: Path) -> None:
    """Two sweeps of one day: the second's rows replace the first's (one accounts row per
    competitor and day, its media once), as for every other dataset."""
    day = date(2026, 3, 1)
    names = ["competitor_0", "competitor_1", "no_such_shop"]
    async with run_simulator(WORLD) as sim:
        info = sim.world_info()
        config = config_for(info, tmp_path, names, harvest={"competitor_media": 7})
        first = await run_harvest(config, mode="sweep", snapshot_date=day)
        second = await run_harvest(config, mode="sweep", snapshot_date=day)
        world = sim.world
    assert first.run_id != second.run_id
    rows = duck(
        tmp_path,
        "SELECT snapshot_date, username, run_id, count(*) OVER (PARTITION BY account_id) "
        f"FROM {parquet(tmp_path, 'accounts')} ORDER BY username",
    )
    assert rows == [
        (day, "competitor_0", second.run_id, 1),
        (day, "competitor_1", second.run_id, 1),
    ]
    media = duck(
        tmp_path,
        f"SELECT media_id, count(*) FROM {parquet(tmp_path, 'media')} WHERE source = 'competitor'"
        " GROUP BY media_id",
    )
    assert {n for _, n in media} == {1}
    assert len(media) == sum(min(7, world.competitors.profile(c).media_count) for c in (0, 1))
    # The unknown name's error row of the day is the second sweep's alone.
    errors = duck(
        tmp_path,
        f"SELECT object_id, run_id FROM {parquet(tmp_path, 'errors')} WHERE stage = 'competitors'",
    )
    assert errors == [("no_such_shop", second.run_id)]


async def test_plan_counts_business_discovery_calls(tmp_path: Path) -> None:
    async with run_simulator(WORLD) as sim:
        config = config_for(
            sim.world_info(),
            tmp_path,
            ["competitor_0", "competitor_1", "competitor_2"],
            harvest={"competitor_media": 25, "media_page_size": 10},
        )
        plan = await make_plan(config)
        assert [e for e in sim.request_log if e["edge"] == "business_discovery"] == []
    assert (plan.competitors, plan.competitor_calls) == (3, 3 * 3)
    assert discovery_calls(0, 100) == 1
    assert discovery_calls(100, 100) == 1
    assert discovery_calls(101, 100) == 2
    assert "business discovery          3                  9  competitors" in plan.render()


async def test_a_run_report_of_competitors_only_in_a_sweep_counts_them(tmp_path: Path) -> None:
    """Exit code 0 when every competitor lands (the world's dead token is left out)."""
    async with run_simulator(WORLD) as sim:
        info = sim.world_info()
        dead = sim.world.expired_token_account
        assert dead is not None
        alive = {**info, "accounts": [a for a in info["accounts"] if a["id"] != dead.id]}
        report: RunReport = await run_harvest(config_for(alive, tmp_path, ["competitor_3"]))
    assert (report.exit_code, report.rows["accounts"], report.rows["errors"]) == (0, 1, 0)


async def test_owned_and_competitor_profiles_side_by_side(tmp_path: Path) -> None:
    """With owned profiles on (the default), `accounts` holds one row per owned account and per
    competitor, told apart by `source`, and the README's follower-growth query reads them."""
    async with run_simulator(WORLD) as sim:
        info = sim.world_info()
        config = config_for(
            info, tmp_path, ["competitor_0", "competitor_1"], harvest={"profiles": True}
        )
        report = await run_harvest(config)
        world = sim.world
    live = [a for a in world.accounts if not a.token_expired]  # an expired one lands none
    assert report.rows["accounts"] == len(live) + 2
    totals = duck(
        tmp_path,
        "SELECT source, sum(followers_count), count(*) "
        f"FROM {parquet(tmp_path, 'accounts')} GROUP BY source ORDER BY source",
    )
    competitors = [world.competitors.profile(c) for c in (0, 1)]
    assert totals == [
        ("competitor", sum(c.followers_count for c in competitors), 2),
        ("owned", sum(a.followers_count for a in live), len(live)),
    ]
