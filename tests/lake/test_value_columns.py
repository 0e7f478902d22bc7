"""Exact values (issue 14): `value` int64 for counts, `value_float` float64 for every other number.

A lake written before `value_float` existed (`tests/data/lake_v0`) and new files written by the
current code (reply -> `graph.replies` -> `RunRows` -> `ParquetSink`) are read together in one
query by pyarrow.dataset, DuckDB and Polars, each with the option the README names: counts stay
exact integers (one beyond float64's 2**53), fractions keep their digits, and `sum(value)` over
old and new rows together is exact.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from harvester.config import OutputSettings
from harvester.graph.account_replies import parse_account_reply
from harvester.graph.replies import parse_insights
from harvester.harvest.rows import RunRows
from harvester.lake.fs import open_lake
from harvester.lake.schema import SCHEMAS, conform
from harvester.lake.sink import ParquetSink
from harvester.models import Account, Dataset, Media, Secret

V0 = Path(__file__).resolve().parents[1] / "data" / "lake_v0"
DAY = date(2026, 12, 1)
RUN = "20261201T120000Z-c0ffee"
BIG = 2**53 + 1  # not a float64: exact only as an integer
ACCOUNT = Account("17841400000000009", "T", Secret("t"))
REEL = Media(ACCOUNT.id, "18000000000000009", "VIDEO", "REELS", None, None)
WHEN = datetime(2026, 11, 30, 8, tzinfo=UTC)

# What the new files hold: (metric, value, value_float), as Meta sent them.
REEL_REPLY = {
    "data": [
        {"name": "reach", "period": "lifetime", "values": [{"value": BIG}]},
        {"name": "views", "period": "lifetime", "values": [{"value": 12.0}]},  # a whole float
        {"name": "reels_skip_rate", "period": "lifetime", "values": [{"value": 0.37}]},
        {"name": "saved", "period": "lifetime", "values": [{"value": 3}]},
    ]
}
NEW_MEDIA = {
    ("reach", BIG, None),
    ("views", 12, None),
    ("reels_skip_rate", None, 0.37),
    ("saved", 3, None),
}
ACCOUNT_REPLY = {
    "data": [
        {
            "name": "reach",
            "period": "day",
            "values": [{"value": 41.26, "end_time": "2026-11-30T08:00:00+0000"}],
        },
        {
            "name": "follower_count",
            "period": "day",
            "values": [{"value": 56, "end_time": "2026-11-30T08:00:00+0000"}],
        },
    ]
}


def old_sum(dataset: str) -> int:
    table = pads.dataset(V0 / dataset, format="parquet").to_table(columns=["value"])
    return int(sum(v for v in table.column("value").to_pylist() if v is not None))


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """lake_v0 plus one new part per insights dataset, written by the current code."""
    root = tmp_path_factory.mktemp("mixed") / "lake"
    shutil.copytree(V0, root)
    rows = RunRows(run_id=RUN, api_version="v27.0")
    media = parse_insights(REEL_REPLY, ["reach", "views", "reels_skip_rate", "saved"])
    account = parse_account_reply(ACCOUNT_REPLY, "series", ["reach", "follower_count"])
    sink = ParquetSink(open_lake(str(root)), run_id=RUN, snapshot_date=DAY,
                       settings=OutputSettings(str(root)))  # fmt: skip
    sink.write(rows.media_insights(ACCOUNT, REEL, media))
    sink.write(rows.account_insights(ACCOUNT, account))
    sink.close()
    return root


def new_files(lake: Path, dataset: str) -> list[Path]:
    return sorted((lake / dataset / f"snapshot_date={DAY}").glob("*.parquet"))


def test_the_new_files_have_the_current_schema_and_the_old_ones_lack_value_float(
    lake: Path,
) -> None:
    for dataset in ("media_insights", "account_insights"):
        [new] = new_files(lake, dataset)
        assert pq.read_schema(new).equals(SCHEMAS[Dataset(dataset)])
        old = [p for p in (lake / dataset).rglob("*.parquet") if p != new]
        assert old and all("value_float" not in pq.read_schema(p).names for p in old)


def test_pyarrow_dataset_with_the_union_schema(lake: Path) -> None:
    files = sorted((lake / "media_insights").rglob("*.parquet"))
    schema = pa.unify_schemas([pq.read_schema(f) for f in files])
    table = pads.dataset(lake / "media_insights", format="parquet", schema=schema).to_table()
    got = table.select(["run_id", "metric", "value", "value_float"]).to_pylist()
    new = {(r["metric"], r["value"], r["value_float"]) for r in got if r["run_id"] == RUN}
    assert new == NEW_MEDIA
    old = [r for r in got if r["run_id"] != RUN]
    assert len(old) == pads.dataset(V0 / "media_insights", format="parquet").count_rows()
    assert all(r["value_float"] is None for r in old)
    counts = sum(r["value"] for r in got if r["value"] is not None)
    assert counts == old_sum("media_insights") + BIG + 12 + 3


def test_duckdb_union_by_name(lake: Path) -> None:
    glob = f"{lake}/media_insights/**/*.parquet"
    source = f"read_parquet('{glob}', hive_partitioning = true, union_by_name = true)"
    db = duckdb.connect()
    [(total, fractions, rows)] = db.execute(
        f"SELECT sum(value), list(value_float) FILTER (value_float IS NOT NULL), count(*) "
        f"FROM {source}"
    ).fetchall()
    assert total == old_sum("media_insights") + BIG + 12 + 3  # HUGEINT: exact
    assert fractions == [0.37]
    old_rows = pads.dataset(V0 / "media_insights", format="parquet").count_rows()
    assert rows == old_rows + len(NEW_MEDIA)
    # One column for both kinds of number: a DOUBLE, exact for counts below 2**53 (BIG is the
    # one count here it rounds, which is why sums of counts read `value`).
    one = db.execute(
        f"SELECT metric, coalesce(value, value_float) FROM {source} WHERE run_id = '{RUN}' "
        "ORDER BY metric"
    ).fetchall()
    assert one == [("reach", float(BIG)), ("reels_skip_rate", 0.37), ("saved", 3), ("views", 12)]
    assert float(BIG) != BIG
    # The queries written before value_float keep working, on old and new files alike.
    [(days,)] = db.execute(f"SELECT count(DISTINCT snapshot_date) FROM {source}").fetchall()
    assert days == 3
    account = f"read_parquet('{lake}/account_insights/**/*.parquet', union_by_name = true)"
    got = db.execute(
        f"SELECT metric, value, value_float FROM {account} WHERE run_id = '{RUN}' ORDER BY 1"
    ).fetchall()
    assert got == [("follower_count", 56, None), ("reach", None, 41.26)]


def test_polars_with_the_newest_schema(lake: Path) -> None:
    [newest] = new_files(lake, "media_insights")
    frame = pl.scan_parquet(
        f"{lake}/media_insights/**/*.parquet",
        hive_partitioning=True,
        schema=pl.read_parquet_schema(newest),
        missing_columns="insert",
    ).collect()
    new = frame.filter(pl.col("run_id") == RUN).select("metric", "value", "value_float")
    assert set(new.iter_rows()) == NEW_MEDIA
    assert frame["value"].sum() == old_sum("media_insights") + BIG + 12 + 3
    assert frame["value_float"].drop_nulls().to_list() == [0.37]
    assert frame["snapshot_date"].n_unique() == 3


def test_conform_gives_an_old_file_the_current_schema() -> None:
    [old] = sorted((V0 / "media_insights").rglob("*.parquet"))[:1]
    table = pq.read_table(old)
    conformed = conform(table, Dataset.MEDIA_INSIGHTS)
    assert conformed.schema.equals(SCHEMAS[Dataset.MEDIA_INSIGHTS])
    assert conformed.column("value_float").null_count == table.num_rows
    assert conformed.drop_columns(["value_float"]).equals(table)
    with pytest.raises(ValueError, match="without the required column metric"):
        conform(table.drop_columns(["metric"]), Dataset.MEDIA_INSIGHTS)


def test_fractions_survive_the_writer_exactly(lake: Path) -> None:
    rows: list[dict[str, Any]] = pq.read_table(new_files(lake, "account_insights")[0]).to_pylist()
    assert [(r["metric"], r["value"], r["value_float"]) for r in rows] == [
        ("follower_count", 56, None),
        ("reach", None, 41.26),
    ]
    assert rows[0]["end_time"] == WHEN
