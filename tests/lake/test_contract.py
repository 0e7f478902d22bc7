"""The lake's contract, written out: every dataset's columns (name, arrow type, nullability) and
the relative paths a run, a sweep and `harvester compact` write.

These literals are what readers (DuckDB views, Spark jobs, dashboards) depend on; a change to
them breaks users, so it must be made here on purpose, never by a refactoring. The schemas are
compared three ways: with the module that defines them (wherever it lives), with the files a run
writes, and with the files of the lake the code before the reorganisation wrote
(`tests/data/lake_v0`), which is the contract before `value_float` (issue 14) was added: the only
change since, a nullable column that readers union by name with the older files.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import anyio
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import harvester
from harvester import parse_config, run_harvest
from harvester.simulator import SimulatorSettings, run_simulator

TS = pa.timestamp("us", tz="UTC")
# `models.MediaDetails`, the media columns from caption to total_views_count (issue 16).
SCHEMA_MEDIA_DETAILS = ["caption", "like_count", "comments_count", "media_url", "thumbnail_url",
    "shortcode", "username", "is_comment_enabled", "is_shared_to_feed", "reposts_count",
    "saved_count", "shares_count", "total_like_count", "total_comments_count",
    "total_views_count"]  # fmt: skip
REQUIRED, NULLABLE = False, True

COLUMNS: dict[str, list[tuple[str, pa.DataType, bool]]] = {
    "media": [
        ("account_id", pa.string(), REQUIRED),
        ("media_id", pa.string(), REQUIRED),
        ("parent_id", pa.string(), NULLABLE),
        ("media_type", pa.string(), NULLABLE),
        ("media_product_type", pa.string(), NULLABLE),
        ("media_timestamp", TS, NULLABLE),
        ("permalink", pa.string(), NULLABLE),
        # issue 16: what the listing call says of a media, and whose it is (nullable: older
        # files have none of these, and readers union by name)
        ("caption", pa.string(), NULLABLE),
        ("like_count", pa.int64(), NULLABLE),
        ("comments_count", pa.int64(), NULLABLE),
        ("media_url", pa.string(), NULLABLE),
        ("thumbnail_url", pa.string(), NULLABLE),
        ("shortcode", pa.string(), NULLABLE),
        ("username", pa.string(), NULLABLE),
        ("is_comment_enabled", pa.bool_(), NULLABLE),
        ("is_shared_to_feed", pa.bool_(), NULLABLE),
        ("reposts_count", pa.int64(), NULLABLE),
        ("saved_count", pa.int64(), NULLABLE),
        ("shares_count", pa.int64(), NULLABLE),
        ("total_like_count", pa.int64(), NULLABLE),
        ("total_comments_count", pa.int64(), NULLABLE),
        ("total_views_count", pa.int64(), NULLABLE),
        ("source", pa.string(), NULLABLE),
        ("fetched_at", TS, REQUIRED),
        ("run_id", pa.string(), REQUIRED),
    ],
    "media_insights": [
        ("account_id", pa.string(), REQUIRED),
        ("media_id", pa.string(), REQUIRED),
        ("media_type", pa.string(), NULLABLE),
        ("media_product_type", pa.string(), NULLABLE),
        ("media_timestamp", TS, NULLABLE),
        ("metric", pa.string(), REQUIRED),
        ("period", pa.string(), NULLABLE),
        ("breakdown", pa.string(), NULLABLE),
        ("value", pa.int64(), NULLABLE),
        ("value_float", pa.float64(), NULLABLE),  # issue 14: fractional values, exactly
        ("api_version", pa.string(), REQUIRED),
        ("fetched_at", TS, REQUIRED),
        ("run_id", pa.string(), REQUIRED),
    ],
    "account_insights": [
        ("account_id", pa.string(), REQUIRED),
        ("metric", pa.string(), REQUIRED),
        ("period", pa.string(), NULLABLE),
        ("end_time", TS, NULLABLE),
        ("dimension", pa.string(), NULLABLE),
        ("dimension_value", pa.string(), NULLABLE),
        ("value", pa.int64(), NULLABLE),
        ("value_float", pa.float64(), NULLABLE),  # issue 14: fractional values, exactly
        ("api_version", pa.string(), REQUIRED),
        ("fetched_at", TS, REQUIRED),
        ("run_id", pa.string(), REQUIRED),
    ],
    # issue 16: one account profile per account and snapshot date
    "accounts": [
        ("account_id", pa.string(), REQUIRED),
        ("username", pa.string(), NULLABLE),
        ("name", pa.string(), NULLABLE),
        ("biography", pa.string(), NULLABLE),
        ("website", pa.string(), NULLABLE),
        ("followers_count", pa.int64(), NULLABLE),
        ("follows_count", pa.int64(), NULLABLE),
        ("media_count", pa.int64(), NULLABLE),
        ("profile_picture_url", pa.string(), NULLABLE),
        ("source", pa.string(), REQUIRED),
        ("fetched_at", TS, REQUIRED),
        ("run_id", pa.string(), REQUIRED),
    ],
    "errors": [
        ("account_id", pa.string(), NULLABLE),
        ("object_id", pa.string(), NULLABLE),
        ("stage", pa.string(), REQUIRED),
        ("http_status", pa.int32(), NULLABLE),
        ("error_code", pa.int32(), NULLABLE),
        ("error_subcode", pa.int32(), NULLABLE),
        ("message", pa.string(), NULLABLE),
        ("fbtrace_id", pa.string(), NULLABLE),
        ("fetched_at", TS, REQUIRED),
        ("run_id", pa.string(), REQUIRED),
    ],
}

# Columns added since the lake of tests/data/lake_v0: `value_float` (issue 14), the media details
# and `source` (issue 16); and the `accounts` dataset (issue 16), which that lake has no files of.
ADDED_SINCE_V0 = {"value_float", "source", *SCHEMA_MEDIA_DETAILS}
COLUMNS_V0 = {
    dataset: [c for c in columns if c[0] not in ADDED_SINCE_V0]
    for dataset, columns in COLUMNS.items()
    if dataset != "accounts"
}

STAMP = r"\d{8}T\d{6}Z-[0-9a-f]{6}"  # run ids, job ids and compaction stamps: UTC time + 6 hex
DAY = r"\d{4}-\d{2}-\d{2}"
DATASET = "(?:media|media_insights|account_insights|accounts|errors)"
JOB = rf"_state/jobs/(?:backfill|sweep)-[0-9a-f]{{16}}/{STAMP}"
LAYOUT: dict[str, str] = {
    "part": rf"{DATASET}/snapshot_date={DAY}/part-{STAMP}-\d{{5}}\.parquet",
    "compacted": rf"{DATASET}/snapshot_date={DAY}/part-compact-{STAMP}-\d{{5}}\.parquet",
    "report": rf"_runs/{STAMP}\.json",
    "cursor": r"_state/cursor\.json",
    "begin": rf"{JOB}/begin\.json",
    "run": rf"{JOB}/run-{STAMP}\.json",
    "epoch": rf"{JOB}/epoch-{STAMP}-\d{{6}}\.json",
    "done": rf"{JOB}/done\.json",
    # A job not settled yet: `<job key>.<job id>.json`.
    "open": rf"_state/open/(?:backfill|sweep)-[0-9a-f]{{16}}\.{STAMP}\.json",
}

DATA = Path(__file__).resolve().parents[1] / "data" / "lake_v0"
WORLD = SimulatorSettings(
    seed=21, accounts=3, media_per_account=120, now=datetime(2026, 3, 2, 12, tzinfo=UTC)
)
SNAPSHOT = date(2026, 3, 2)


def described(schema: pa.Schema) -> list[tuple[str, pa.DataType, bool]]:
    return [(f.name, f.type, f.nullable) for f in schema]


def schemas_module() -> Any:
    """Where the schemas live: `harvester.lake.schema`, or `harvester.schema` before the move."""
    try:
        return importlib.import_module("harvester.lake.schema")
    except ImportError:
        return importlib.import_module("harvester.schema")


def kinds(lake: Path) -> Counter[str]:
    """How many files of each LAYOUT kind the lake holds; every file must be of exactly one."""
    found: Counter[str] = Counter()
    for path in sorted(p.relative_to(lake).as_posix() for p in lake.rglob("*") if p.is_file()):
        matched = [kind for kind, pattern in LAYOUT.items() if re.fullmatch(pattern, path)]
        assert len(matched) == 1, f"{path} matches {matched or 'no pattern'} of the layout"
        found[matched[0]] += 1
    return found


def assert_schemas(lake: Path, columns: dict[str, Any] = COLUMNS) -> None:
    for path in lake.rglob("*.parquet"):
        dataset = path.relative_to(lake).parts[0]
        assert described(pq.read_schema(path)) == columns[dataset], path


def test_the_schemas_module_says_what_the_contract_says() -> None:
    schemas = {getattr(d, "value", d): s for d, s in schemas_module().SCHEMAS.items()}
    assert sorted(schemas) == sorted(COLUMNS)
    for dataset, columns in COLUMNS.items():
        assert described(schemas[dataset]) == columns, dataset


def test_the_lake_before_the_reorganisation_has_the_same_contract() -> None:
    assert_schemas(DATA, COLUMNS_V0)
    found = kinds(DATA)
    # A finished job and an open one; parts of both on two dates; one report (the finished run).
    assert found["part"] == len(list(DATA.rglob("*.parquet"))) >= 8
    assert (found["report"], found["cursor"], found["open"]) == (1, 1, 1)
    assert (found["begin"], found["run"], found["done"]) == (2, 2, 1)
    assert found["compacted"] == 0


def config(info: dict[str, Any], lake: Path) -> Any:
    text = (
        f"[graph]\nbase_url = '{info['base_url']}'\napi_version = '{info['api_version']}'\n"
        f"[output]\npath = '{lake}'\n"
    )
    env = {}
    for i, account in enumerate(info["accounts"]):
        text += f"[[accounts]]\nid = '{account['id']}'\ntoken_env = 'T{i}'\n"
        env[f"T{i}"] = account["token"]
    return parse_config(text, source="contract.toml", base_dir=lake.parent, env=env)


@pytest.mark.anyio
async def test_a_run_a_sweep_and_compact_write_the_pinned_layout(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    clock = datetime(2026, 3, 2, 12, tzinfo=UTC)
    async with run_simulator(WORLD) as sim:
        with anyio.fail_after(20):
            report = await run_harvest(config(sim.world_info(), lake), now=clock)
    assert report.exit_code == 3  # the planted troubles: every dataset gets rows
    assert re.fullmatch(STAMP, report.run_id)
    assert_schemas(lake)
    parts = {p.relative_to(lake).as_posix() for p in lake.rglob("*.parquet")}
    assert parts == {
        f"{d}/snapshot_date={SNAPSHOT}/part-{report.run_id}-00000.parquet" for d in COLUMNS
    }
    assert kinds(lake) == Counter(
        part=5, report=1, cursor=1, begin=1, run=1, epoch=1, done=1
    )  # the job settled: nothing under _state/open
    assert (lake / "_runs" / f"{report.run_id}.json").is_file()
    [begin] = lake.glob("_state/jobs/backfill-*/*/begin.json")
    assert (begin.parent / f"run-{report.run_id}.json").is_file()
    assert [p.name for p in begin.parent.glob("epoch-*.json")] == [
        f"epoch-{report.run_id}-000000.json"
    ]

    # A sweep the same day: a second job, with its own parts beside the first (rows it replaces
    # are rewritten out of the first job's files, which keep their names).
    async with run_simulator(WORLD) as sim:
        with anyio.fail_after(20):
            swept = await run_harvest(
                config(sim.world_info(), lake), mode="sweep", now=clock.replace(hour=18)
            )
    assert swept.exit_code == 3
    assert_schemas(lake)
    # The sweep profiled every account the run did: the run's `accounts` file held only replaced
    # rows, so it is gone (one row per account and snapshot date).
    assert kinds(lake) == Counter(part=9, report=2, cursor=1, begin=2, run=2, epoch=2, done=2)
    sweeps = list(lake.glob(f"*/snapshot_date={SNAPSHOT}/part-{swept.run_id}-00000.parquet"))
    assert len(sweeps) == 5
    assert not list(lake.glob(f"accounts/*/part-{report.run_id}-*.parquet"))
    assert len(list(lake.glob("_state/jobs/sweep-*/*/done.json"))) == 1

    # `harvester compact`: one file per dataset and date, named part-compact-<stamp>-NNNNN.
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [sys.executable, "-m", "harvester", "compact", str(lake)], check=False, env=cli_env()
        )
    assert done.returncode == 0, done.stderr.decode()
    assert_schemas(lake)
    assert kinds(lake) == Counter(
        compacted=4, part=1, report=2, cursor=1, begin=2, run=2, epoch=2, done=2
    )  # no compaction plan is left under _state/compactions; `accounts` has one file: kept as is


def cli_env() -> dict[str, str]:
    """The CLI runs the package these tests import, wherever pytest was started from."""
    root = str(Path(harvester.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
