"""End to end against the simulated Graph API: the lake holds exactly what the world says it should.

Expectations come from the simulator's own world and validity tables, which never import the
harvester's catalogue, so a wrong constant on either side makes these tests fail.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.dataset as ds
import pytest

from harvester.cli import demo_config
from harvester.config import parse_config
from harvester.graph.errors import GraphError, TokenInvalid
from harvester.harvest.pipeline import run_harvest
from harvester.harvest.report import RunReport
from harvester.lake.schema import SCHEMAS
from harvester.models import Dataset
from harvester.simulator import SimulatorSettings, World, run_simulator
from harvester.simulator.validity import valid_media_metrics

# Errors the planted troubles must produce: (error_code, error_subcode)
TROUBLE_ERRORS = {"pre_conversion": (100, 2108006), "deleted": (100, 33), "few_viewers": (10, None)}
BREAKDOWN_KEYS = {"profile_activity": "action_type", "navigation": "story_navigation_action_type"}

SETTINGS = SimulatorSettings(seed=11, accounts=4, media_per_account=45)


def read(lake: Path, dataset: Dataset) -> list[dict[str, Any]]:
    table = ds.dataset(lake / dataset.value, format="parquet", partitioning="hive").to_table()
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def live_accounts(world: World) -> Iterator[Any]:
    return (a for a in world.accounts if not a.token_expired)


def expected_insights(world: World, version: str) -> tuple[set[tuple[Any, ...]], dict[str, Any]]:
    """(media_id, metric, breakdown, value) rows and the expected error per media id."""
    rows: set[tuple[Any, ...]] = set()
    errors: dict[str, Any] = {}
    for account in live_accounts(world):
        for media in [*world.iter_media(account.id), *world.stories(account.id)]:
            if media.trouble in TROUBLE_ERRORS:
                errors[media.id] = TROUBLE_ERRORS[media.trouble]
                continue
            metrics = valid_media_metrics(
                version,
                media.media_type,
                media.media_product_type,
                as_of=None,
                created=media.timestamp,
                login=account.login,
                shared_to_facebook=world.shared_to_facebook(media),
            )
            for metric in metrics:
                if media.trouble == "no_data":
                    rows.add((media.id, metric, None, None))
                    continue
                rows.add((media.id, metric, None, world.media_metric_value(media.id, metric)))
                if metric in BREAKDOWN_KEYS:
                    key = BREAKDOWN_KEYS[metric]
                    for value, n in world.media_metric_breakdown(media.id, metric).items():
                        rows.add((media.id, metric, f"{key}={value}", n))
    return rows, errors


async def harvest(world_info: dict[str, Any], lake: Path, version: str) -> RunReport:
    # Media only: account insights have their own tests (tests/test_account_insights.py).
    # No account stops asking conditional metrics: which stop depends on reply order.
    media_only = {"harvest": {"account_insights": False, "conditional_refusals_in_a_row": 1000}}
    toml_text, kwargs = demo_config({**world_info, "api_version": version}, lake, media_only)
    return await run_harvest(parse_config(toml_text, **kwargs))


@pytest.mark.anyio
@pytest.mark.parametrize("version", ["v17.0", "v25.0", "v27.0"])
async def test_every_media_gets_exactly_its_metric_set(tmp_path: Path, version: str) -> None:
    async with run_simulator(SETTINGS) as sim:
        report = await harvest(sim.world_info(), tmp_path, version)
        world, log = sim.world, list(sim.request_log)

    want_rows, want_errors = expected_insights(world, version)
    insights = read(tmp_path, Dataset.MEDIA_INSIGHTS)
    # A count is in `value`, a fraction (reels_skip_rate) in `value_float`, never both.
    assert not [r for r in insights if r["value"] is not None and r["value_float"] is not None]
    fractional = {metric for _, metric, _, value in want_rows if isinstance(value, float)}
    assert fractional
    assert {r["metric"] for r in insights if r["value_float"] is not None} == fractional
    got_rows = {
        (
            r["media_id"],
            r["metric"],
            r["breakdown"],
            r["value"] if r["value_float"] is None else r["value_float"],
        )
        for r in insights
    }
    assert got_rows == want_rows
    assert len(insights) == len(want_rows), "duplicate insight rows"
    # Exact fractions, their digits kept: some under 1 (0.37 must not become 0), some with two.
    fractions = [r["value_float"] for r in insights if r["value_float"] is not None]
    assert any(0 < v < 1 for v in fractions), fractions
    assert any(round(v, 1) != v for v in fractions), fractions
    assert {r["api_version"] for r in insights} == {version}
    assert {r["period"] for r in insights} == {"lifetime"}

    errors = read(tmp_path, Dataset.ERRORS)
    by_object = {r["object_id"]: (r["error_code"], r["error_subcode"]) for r in errors}
    expired = [a for a in world.accounts if a.token_expired]
    assert len(expired) == 1
    assert by_object == {**want_errors, expired[0].id: (190, 463)}
    assert len(errors) == len(by_object)

    # Every listed media and child is in `media`; children carry their parent and get no insights.
    media_rows = read(tmp_path, Dataset.MEDIA)
    want_media = {
        (m.id, m.parent_id)
        for a in live_accounts(world)
        for top in [*world.iter_media(a.id), *world.stories(a.id)]
        for m in [top, *world.children(top.id)]
    }
    assert {(r["media_id"], r["parent_id"]) for r in media_rows} == want_media
    assert len(media_rows) == len(want_media)
    children = {m for m, parent in want_media if parent is not None}
    assert children, "the world should have carousel children"
    assert not children & {r["media_id"] for r in insights}
    insight_calls = [e for e in log if e.get("edge") == "insights"]
    assert insight_calls and not {e["object_id"] for e in insight_calls} & children
    stories = {m.id for a in live_accounts(world) for m in world.stories(a.id)}
    assert stories & {r["media_id"] for r in insights}, "stories are harvested while live"

    # No call with the expired token after Meta said 190.
    expired_hash = hashlib.sha256(expired[0].token.encode()).hexdigest()
    expired_calls = [e for e in log if e["token_sha256"] == expired_hash]
    assert len(expired_calls) == 1

    assert report.rows[Dataset.MEDIA_INSIGHTS.value] == len(insights)
    assert report.rows[Dataset.ERRORS.value] == len(errors)
    assert report.exit_code == 3


@pytest.mark.anyio
async def test_lake_schema_and_keys_as_real_readers_see_them(tmp_path: Path) -> None:
    async with run_simulator(SETTINGS) as sim:
        await harvest(sim.world_info(), tmp_path, "v25.0")

    for dataset in (Dataset.MEDIA, Dataset.MEDIA_INSIGHTS, Dataset.ERRORS):
        table = ds.dataset(tmp_path / dataset.value, format="parquet", partitioning="hive")
        file_schema = ds.dataset(tmp_path / dataset.value, format="parquet").schema
        assert file_schema.remove_metadata() == SCHEMAS[dataset].remove_metadata()
        assert table.schema.names == [*SCHEMAS[dataset].names, "snapshot_date"]

    glob = f"{tmp_path}/media_insights/**/*.parquet"
    con = duckdb.connect()
    columns = con.execute(
        f"DESCRIBE SELECT * FROM read_parquet('{glob}', hive_partitioning = true)"
    ).fetchall()
    assert [(c[0], c[1]) for c in columns] == [
        ("account_id", "VARCHAR"),
        ("media_id", "VARCHAR"),
        ("media_type", "VARCHAR"),
        ("media_product_type", "VARCHAR"),
        ("media_timestamp", "TIMESTAMP WITH TIME ZONE"),
        ("metric", "VARCHAR"),
        ("period", "VARCHAR"),
        ("breakdown", "VARCHAR"),
        ("value", "BIGINT"),
        ("value_float", "DOUBLE"),
        ("api_version", "VARCHAR"),
        ("fetched_at", "TIMESTAMP WITH TIME ZONE"),
        ("run_id", "VARCHAR"),
        ("snapshot_date", "DATE"),
    ]
    duplicates = con.execute(
        f"SELECT snapshot_date, media_id, metric, breakdown, count(*) FROM read_parquet('{glob}', "
        "hive_partitioning = true) GROUP BY ALL HAVING count(*) > 1"
    ).fetchall()
    assert duplicates == []
    total = con.execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchone()
    assert total is not None and total[0] > 0


@pytest.mark.anyio
async def test_media_gather_into_full_batches_behind_a_busy_sink(tmp_path: Path) -> None:
    """The sink yields to the loop per unit, as a stream's receive() does, so when the lake is
    the slower end the insights workers' sends block and listed media gather into Graph batches.
    A sink that drained its stream without yielding once made the demo send 3x the batch POSTs
    (2,400 instead of 713 for 20 accounts x 200 media: each batch carried ~3 media, not ~10)."""
    settings = SimulatorSettings(seed=7, accounts=20, media_per_account=200, api_version="v25.0")
    async with run_simulator(settings) as sim:
        text, kwargs = demo_config(sim.world_info(), tmp_path / "lake")
        await run_harvest(parse_config(text, **kwargs))
        log = list(sim.request_log)
    ops = [e for e in log if e["batch"]]
    posts = [e for e in log if e["edge"] == "batch"]
    assert len(ops) >= 6_000  # the media insights went in batches
    assert len(ops) / len(posts) >= 6, (len(ops), len(posts))


@pytest.mark.anyio
@pytest.mark.parametrize(
    "settings",
    [
        SETTINGS,
        SimulatorSettings(seed=11, accounts=4, media_per_account=45, instagram_accounts=2),
    ],
    ids=["batch-posts", "instagram-singles"],
)
async def test_refused_ops_are_freed_once_answered_not_left_to_the_cycle_collector(
    tmp_path: Path, settings: SimulatorSettings
) -> None:
    """An op's error kept as its answer once held, through its traceback, the frame that caught
    it, and so the whole batch reply, in a reference cycle only the cyclic collector frees (half
    its time in a batched harvest). With the collector off, none of them may outlive the run:
    refusals, deleted media and too few viewers, in batch POSTs, and in the single GETs an
    Instagram host that refuses batches gets instead. The expired account's token error stays
    with its closed account; it is not an answer."""
    async with run_simulator(settings) as sim:
        text, kwargs = demo_config(sim.world_info(), tmp_path / "lake")
        gc.collect()
        gc.disable()
        try:
            before = {id(o) for o in gc.get_objects() if isinstance(o, GraphError)}  # other tests'
            report = await run_harvest(parse_config(text, **kwargs))
            alive = [
                o for o in gc.get_objects() if isinstance(o, GraphError) and id(o) not in before
            ]
        finally:
            gc.enable()
        log = list(sim.request_log)
    refused = [e for e in log if e["error_code"] in (10, 100)]
    assert len(refused) >= 20, "the world should refuse ops"
    if settings.instagram_accounts:
        assert [e for e in refused if e["host"] == "instagram" and not e["batch"]]
    assert report.rows["errors"] >= 5
    assert [type(o).__name__ for o in alive if not isinstance(o, TokenInvalid)] == []
