"""Conditional metrics end to end: crossposted_views and facebook_views land exactly for the media
shared to Facebook, their refusals cost nothing else, and the waste is bounded per account.

Who is shared comes from the simulator's World; what each media has from its validity tables
(neither imports the harvester's catalogue). Every test runs the single and the batched path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from harvester.cli import demo_config
from harvester.config import parse_config
from harvester.harvest.pipeline import run_harvest
from harvester.harvest.report import RunReport
from harvester.models import Dataset
from harvester.simulator import SimulatorSettings, World, run_simulator
from harvester.simulator.entities import SimMedia
from harvester.simulator.validity import SHARED_TO_FACEBOOK_ONLY, valid_media_metrics

VERSION = "v27.0"
PATHS = pytest.mark.parametrize("batch_size", [0, 50], ids=["single", "batched"])


def read(lake: Path, dataset: Dataset) -> list[dict[str, Any]]:
    path = lake / dataset.value
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = (
        ds.dataset(path, format="parquet", partitioning="hive").to_table().to_pylist()
    )
    return rows


def harvested_media(world: World) -> list[SimMedia]:
    return [m for a in world.accounts for m in [*world.iter_media(a.id), *world.stories(a.id)]]


def metrics_of(media: SimMedia, *, shared: bool) -> frozenset[str]:
    return valid_media_metrics(
        VERSION,
        media.media_type,
        media.media_product_type,
        as_of=None,
        created=media.timestamp,
        shared_to_facebook=shared,
    )


def conditional_calls(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insights calls (single GETs and batch ops) asking a conditional metric."""
    return [
        e
        for e in log
        if e.get("edge") == "insights"
        and SHARED_TO_FACEBOOK_ONLY & set(str(e["params"].get("metric", "")).split(","))
    ]


async def harvest(sim_info: dict[str, Any], lake: Path, **harvest: Any) -> RunReport:
    settings = {"harvest": {"account_insights": False, **harvest}}
    toml_text, kwargs = demo_config({**sim_info, "api_version": VERSION}, lake, settings)
    return await run_harvest(parse_config(toml_text, **kwargs))


@pytest.mark.anyio
@PATHS
async def test_conditional_metrics_land_exactly_for_shared_media(
    tmp_path: Path, batch_size: int
) -> None:
    settings = SimulatorSettings(
        seed=11, accounts=3, media_per_account=40, troubles=False, api_version=VERSION
    )
    async with run_simulator(settings) as sim:
        report = await harvest(
            sim.world_info(),
            tmp_path,
            batch_size=batch_size,
            # Large enough that no account stops: this test counts every refusal.
            conditional_refusals_in_a_row=1000,
        )
        world, log = sim.world, list(sim.request_log)

    media = harvested_media(world)
    want: set[tuple[str, str]] = set()
    refusing = 0
    for m in media:
        shared = world.shared_to_facebook(m)
        want |= {(m.id, metric) for metric in metrics_of(m, shared=shared)}
        may_have = metrics_of(m, shared=True) & SHARED_TO_FACEBOOK_ONLY
        refusing += bool(may_have) and not shared
    shared_media = {m.id for m in media if world.shared_to_facebook(m)}
    assert shared_media and refusing, "the world should have both kinds of media"

    insights = [r for r in read(tmp_path, Dataset.MEDIA_INSIGHTS) if r["breakdown"] is None]
    assert {(r["media_id"], r["metric"]) for r in insights} == want
    assert len(insights) == len(want), "duplicate insight rows"
    conditional = [r for r in insights if r["metric"] in SHARED_TO_FACEBOOK_ONLY]
    assert {r["media_id"] for r in conditional} == shared_media
    for row in conditional:
        assert row["value"] == world.media_metric_value(row["media_id"], row["metric"])

    assert read(tmp_path, Dataset.ERRORS) == []
    assert report.exit_code == 0
    assert report.conditional_refused == refusing
    assert report.conditional_accounts_stopped == 0
    # One extra call per media that may have them, both metrics together.
    calls = conditional_calls(log)
    assert len(calls) == len(media)
    assert {e["params"]["metric"] for e in calls} <= {
        "crossposted_views,facebook_views",
        "facebook_views",
    }
    labels = dict(report.summary_rows())
    assert labels["conditional metrics refused (media not shared)"] == str(refusing)


@pytest.mark.anyio
@PATHS
async def test_an_account_that_never_shares_is_asked_k_times(
    tmp_path: Path, batch_size: int
) -> None:
    k = 3
    settings = SimulatorSettings(
        seed=5,
        accounts=2,
        media_per_account=30,
        troubles=False,
        api_version=VERSION,
        shared_to_facebook_percent=0,
    )
    async with run_simulator(settings) as sim:
        report = await harvest(
            sim.world_info(), tmp_path, batch_size=batch_size, conditional_refusals_in_a_row=k
        )
        world, log = sim.world, list(sim.request_log)

    owner = {m.id: m.account_index for m in harvested_media(world)}
    asked: dict[int, int] = {}
    for entry in conditional_calls(log):
        asked[owner[entry["object_id"]]] = asked.get(owner[entry["object_id"]], 0) + 1
    assert asked == {a.index: k for a in world.accounts}
    assert report.conditional_refused == k * len(world.accounts)
    assert report.conditional_accounts_stopped == len(world.accounts)
    labels = dict(report.summary_rows())
    assert labels["accounts no longer asked them (refusals in a row)"] == "2"

    # The refusals cost no other metric.
    want = {(m.id, x) for m in harvested_media(world) for x in metrics_of(m, shared=False)}
    insights = read(tmp_path, Dataset.MEDIA_INSIGHTS)
    assert {(r["media_id"], r["metric"]) for r in insights if r["breakdown"] is None} == want
    assert read(tmp_path, Dataset.ERRORS) == []


@pytest.mark.anyio
@PATHS
async def test_facebook_views_false_makes_no_extra_call(tmp_path: Path, batch_size: int) -> None:
    settings = SimulatorSettings(
        seed=11, accounts=2, media_per_account=20, troubles=False, api_version=VERSION
    )
    async with run_simulator(settings) as sim:
        report = await harvest(
            sim.world_info(), tmp_path, batch_size=batch_size, facebook_views=False
        )
        log = list(sim.request_log)

    assert conditional_calls(log) == []
    metrics = {r["metric"] for r in read(tmp_path, Dataset.MEDIA_INSIGHTS)}
    assert metrics and not metrics & SHARED_TO_FACEBOOK_ONLY
    assert report.conditional_refused == 0
    assert "conditional metrics refused (media not shared)" not in dict(report.summary_rows())


def posts_of(log: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The batch POSTs in the log, each as its ops (the simulator logs a POST, then its ops)."""
    posts: list[list[dict[str, Any]]] = []
    for entry in log:
        if entry["edge"] == "batch" and not entry["batch"]:
            posts.append([])
        elif entry["batch"]:
            posts[-1].append(entry)
    return posts


@pytest.mark.anyio
async def test_an_account_that_shares_asks_them_beside_the_main_ops(tmp_path: Path) -> None:
    """A media's conditional op goes in the POST of its main ops while the account may ask it
    (its first K asks, then every ask once one media had them), not in a POST of its own after
    they were answered (a round trip more for the account's media)."""
    settings = SimulatorSettings(
        seed=11,
        accounts=1,
        media_per_account=150,
        troubles=False,
        api_version=VERSION,
        shared_to_facebook_percent=100,
        latency_ms=5.0,
    )
    async with run_simulator(settings) as sim:
        # No stories: the first POST is the first listed page's, full.
        report = await harvest(sim.world_info(), tmp_path, batch_size=50, stories=False)
        world, log = sim.world, list(sim.request_log)

    posts = posts_of(log)
    main_post: dict[str, int] = {}
    conditional_post: dict[str, int] = {}
    for number, post in enumerate(posts):
        for op in post:
            metrics = set(str(op["params"].get("metric", "")).split(","))
            if op["params"].get("breakdown") is None:
                into = conditional_post if metrics & SHARED_TO_FACEBOOK_ONLY else main_post
                into[op["object_id"]] = number
    # Every media that may have them was asked them; only those of the first POST (sent before
    # any answer showed that the account shares) beyond its first K asks (the refusals it may
    # spend, 10 by default) had their conditional op in a later POST.
    may_have = {
        m.id
        for a in world.accounts
        for m in world.iter_media(a.id)
        if metrics_of(m, shared=True) & SHARED_TO_FACEBOOK_ONLY
    }
    assert set(conditional_post) == may_have
    first = {media for media, number in main_post.items() if number == 0}
    apart = {m for m in conditional_post if conditional_post[m] != main_post[m]}
    assert apart <= first and len(apart) <= max(0, len(first) - 10)
    assert report.conditional_refused == 0 and report.exit_code == 0
