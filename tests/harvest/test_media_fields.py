"""Issue 16 end to end: the media details and the `accounts` profiles in the lake equal the
simulated world's values, null exactly where the world omits a field, read by DuckDB and Polars;
the listing asks them without a call more per media; a same-day sweep keeps one profile per
account.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from harvester.cli import demo_config
from harvester.config import parse_config
from harvester.harvest.pipeline import run_harvest
from harvester.harvest.report import RunReport
from harvester.models import MediaDetails
from harvester.simulator import SimulatorSettings, World, run_simulator
from harvester.simulator.entities import SimMedia
from harvester.simulator.validity import MEDIA_COUNT_FIELDS

pytestmark = pytest.mark.anyio

# Six accounts: one of them without a website, one without either (and one expired token).
SETTINGS = SimulatorSettings(seed=11, accounts=6, media_per_account=45)
# The `media` columns caption .. total_views_count.
DETAILS = list(MediaDetails._fields)
PROFILE = [
    "username",
    "name",
    "biography",
    "website",
    "followers_count",
    "follows_count",
    "media_count",
    "profile_picture_url",
]


async def harvest(
    info: dict[str, Any], lake: Path, mode: str = "backfill", **harvest: Any
) -> RunReport:
    media_only = {"harvest": {"account_insights": False, **harvest}}
    text, kwargs = demo_config(info, lake, media_only)
    return await run_harvest(parse_config(text, **kwargs), mode=mode)  # type: ignore[arg-type]


def expected_details(world: World, media: SimMedia) -> tuple[Any, ...]:
    """The `media` columns caption .. total_views_count, as the world has them (Facebook Login,
    no clock: every field exists), None where the listing does not get the field."""
    acc = world.accounts[media.account_index]
    likes = None if world.likes_hidden(media) else world.value_of(media, "likes")
    urls = (world.media_url(media), world.thumbnail_url(media), media.shortcode)
    if media.is_child:
        return (None, None, None, *urls, *[None] * 9)
    if media.is_story:
        return (None, likes, world.value_of(media, "comments"), *urls, acc.username, *[None] * 8)
    return (
        world.caption(media),
        likes,
        world.value_of(media, "comments"),
        *urls,
        acc.username,
        world.comments_enabled(media),
        True if media.media_product_type == "REELS" else None,
        *(world.value_of(media, m) for m in MEDIA_COUNT_FIELDS.values()),
    )


def expected_media(world: World) -> dict[str, tuple[Any, ...]]:
    out = {}
    for acc in world.accounts:
        if acc.token_expired:
            continue
        for top in [*world.iter_media(acc.id), *world.stories(acc.id)]:
            for media in [top, *world.children(top.id)]:
                out[media.id] = (*expected_details(world, media), "owned")
    return out


def expected_profiles(world: World) -> dict[str, tuple[Any, ...]]:
    return {
        acc.id: (
            acc.username,
            acc.name,
            world.biography(acc),
            world.website(acc),
            acc.followers_count,
            acc.follows_count,
            world.media_per_account,
            f"https://scontent.xx.fbcdn.net/v/t51.2885-15/{acc.id}_n.jpg",
            "owned",
        )
        for acc in world.accounts
        if not acc.token_expired
    }


def glob(lake: Path, dataset: str) -> str:
    return f"read_parquet('{lake}/{dataset}/**/*.parquet', hive_partitioning = true)"


async def test_media_and_profile_columns_equal_the_world(tmp_path: Path) -> None:
    async with run_simulator(SETTINGS) as sim:
        report = await harvest(sim.world_info(), tmp_path)
        world = sim.world
    assert report.exit_code == 3  # the planted troubles

    want = expected_media(world)
    columns = ", ".join([*DETAILS, "source"])
    con = duckdb.connect()
    got = {
        media_id: tuple(rest)
        for media_id, *rest in con.execute(
            f"SELECT media_id, {columns} FROM {glob(tmp_path, 'media')}"
        ).fetchall()
    }
    assert got == want
    frame = pl.read_parquet(f"{tmp_path}/media/**/*.parquet")
    assert frame.height == len(want)
    polars_rows = {r[0]: r[1:] for r in frame.select(["media_id", *DETAILS, "source"]).rows()}
    assert polars_rows == want
    # Null exactly where the world omits the field: hidden likes, withheld video URLs.
    hidden = {m for m, row in want.items() if row[1] is None}
    assert hidden and hidden == {m for m, row in got.items() if row[1] is None}
    withheld = [m for m, row in want.items() if row[3] is None]
    assert withheld and all(world.media(m).media_type == "VIDEO" for m in withheld)  # type: ignore[union-attr]

    profiles = {
        account_id: tuple(rest)
        for account_id, *rest in con.execute(
            f"SELECT account_id, {', '.join(PROFILE)}, source FROM {glob(tmp_path, 'accounts')}"
        ).fetchall()
    }
    assert profiles == expected_profiles(world)
    accounts = pl.read_parquet(f"{tmp_path}/accounts/**/*.parquet")
    assert {r[0]: r[1:] for r in accounts.select(["account_id", *PROFILE, "source"]).rows()} == (
        expected_profiles(world)
    )
    assert {row[3] is None for row in profiles.values()} == {True, False}  # some lack a website
    assert {row[2] is None for row in profiles.values()} == {True, False}  # or a biography
    assert report.rows["accounts"] == len(profiles)


async def test_the_details_cost_no_call_and_the_profile_one_per_account(tmp_path: Path) -> None:
    settings = SimulatorSettings(seed=5, accounts=1, media_per_account=250, troubles=False)
    edges: dict[bool, list[str]] = {}
    async with run_simulator(settings) as sim:
        for profiles in (False, True):
            sim.request_log.clear()
            report = await harvest(sim.world_info(), tmp_path / str(profiles), profiles=profiles)
            assert report.exit_code == 0
            edges[profiles] = sorted(e["edge"] for e in sim.request_log)
        world = sim.world
    media = 250
    # One listing call per 100 media, one stories call, and each media's insights (in batches):
    # what the run asked before the details were; nothing asked of a single media or its
    # children, and the profile call is the one more.
    assert edges[False].count("media") == math.ceil(media / 100)
    assert edges[False].count("stories") == 1
    assert "object" not in edges[False] and "children" not in edges[False]
    assert edges[True] == sorted([*edges[False], "object"])
    assert len(world.accounts) == 1


async def test_a_same_day_sweep_keeps_one_profile_per_account(tmp_path: Path) -> None:
    async with run_simulator(SETTINGS) as sim:
        first = await harvest(sim.world_info(), tmp_path)
        swept = await harvest(sim.world_info(), tmp_path, mode="sweep")
        world = sim.world
    rows = duckdb.sql(
        f"SELECT account_id, snapshot_date, run_id FROM {glob(tmp_path, 'accounts')}"
    ).fetchall()
    live = {a.id for a in world.accounts if not a.token_expired}
    assert sorted(r[0] for r in rows) == sorted(live)
    assert {r[2] for r in rows} == {swept.run_id} != {first.run_id}
    assert len({r[1] for r in rows}) == 1


async def test_fields_meta_has_not_added_yet_are_dropped_and_left_null(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Meta before 2026-04-22: the newer counts do not exist, in any version. The first listing
    # call names one (code 100); the run asks again without it and the others Meta added with
    # it, for every account, and the other details land as usual. One account at a time, so
    # that exactly one call meets the refusal.
    settings = SimulatorSettings(seed=11, accounts=3, media_per_account=45, as_of=date(2026, 4, 1))
    async with run_simulator(settings) as sim:
        text, kwargs = demo_config(
            sim.world_info(),
            tmp_path,
            {"harvest": {"account_insights": False}, "limits": {"max_accounts_in_flight": 1}},
        )
        report = await run_harvest(parse_config(text, **kwargs))
        world, log = sim.world, list(sim.request_log)
    assert report.exit_code == 3  # the planted troubles and the expired token, nothing else
    refused = [e for e in log if e["edge"] == "media" and e["error_code"] == 100]
    assert len(refused) == 1
    errors = duckdb.sql(f"SELECT stage FROM {glob(tmp_path, 'errors')}").fetchall()
    assert ("listing",) in errors and len([e for e in errors if e == ("listing",)]) == 1
    frame = pl.read_parquet(f"{tmp_path}/media/**/*.parquet")
    counts = frame.select(list(MEDIA_COUNT_FIELDS)).null_count().row(0)
    assert counts == (frame.height,) * len(MEDIA_COUNT_FIELDS)
    want = expected_media(world)
    got = {r[0]: r[1:] for r in frame.select(["media_id", *DETAILS[:9]]).rows()}
    assert got == {m: row[:9] for m, row in want.items()}
    assert "Meta has no field reposts_count here" in caplog.text
