"""The lake on object storage: a harvest, its state and a same-day sweep on a real S3-compatible
server (moto in server mode on loopback), read back by pyarrow.dataset, DuckDB and Polars."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest
from s3_server import make_bucket, moto_endpoint  # noqa: F401  (a fixture)

from harvester.cli import demo_config
from harvester.config import parse_config
from harvester.harvest.pipeline import run_harvest
from harvester.models import Dataset, HarvestWindow
from harvester.simulator import SimulatorSettings, run_simulator

pytestmark = pytest.mark.anyio

DAY = date(2026, 3, 1)
WORLD = SimulatorSettings(
    seed=6, accounts=4, media_per_account=1095, now=datetime(2026, 3, 1, 12, tzinfo=UTC)
)
IGNORED = ("run_id", "fetched_at", "fbtrace_id")


def rows(dataset: ds.Dataset) -> Counter[tuple[Any, ...]]:
    table = dataset.to_table()
    table = table.drop_columns([c for c in IGNORED if c in table.column_names])
    return Counter(zip(*table.to_pydict().values(), strict=True))


async def test_a_lake_on_s3_round_trips(tmp_path: Path, moto_endpoint: str) -> None:  # noqa: F811
    make_bucket(moto_endpoint, "harvest")
    uri = "s3://harvest/lakes/ig"
    # Several checkpoints per run, so the state objects and manifests are exercised on S3 too.
    output = {"checkpoint_seconds": 0.5, "s3_endpoint": moto_endpoint}
    clock = datetime(2026, 3, 1, 13, tzinfo=UTC)
    async with run_simulator(WORLD) as sim:
        info = sim.world_info()
        for path, extra in ((uri, output), (str(tmp_path), {})):
            settings = {"output": {"path": path, **extra}, "harvest": {"lookback_days": 5}}
            toml_text, kwargs = demo_config(info, tmp_path, settings)
            config = parse_config(toml_text, **kwargs)
            await run_harvest(config, window=HarvestWindow(clock - timedelta(days=10)), now=clock)
            # A same-day sweep: its rows supersede the backfill's, rewriting objects in place.
            await run_harvest(config, mode="sweep", now=clock)

    s3 = pafs.S3FileSystem(
        endpoint_override=moto_endpoint.removeprefix("http://"), scheme="http", region="us-east-1"
    )
    for dataset in Dataset:
        remote = ds.dataset(
            f"harvest/lakes/ig/{dataset.value}",
            filesystem=s3,
            format="parquet",
            partitioning="hive",
        )
        local = ds.dataset(tmp_path / dataset.value, format="parquet", partitioning="hive")
        assert rows(remote) == rows(local), dataset
        assert remote.count_rows() > 0
    state = s3.get_file_info(pafs.FileSelector("harvest/lakes/ig/_state", recursive=True))
    names = {info.base_name for info in state}
    assert "cursor.json" in names and "done.json" in names
    assert not [i for i in state if "/_state/open/" in i.path]  # both jobs settled

    # Readers straight from S3: Polars with its own S3 client, DuckDB through pyarrow's dataset
    # (its httpfs extension would have to be downloaded); both prune to the filtered date.
    insights = ds.dataset(
        "harvest/lakes/ig/media_insights", filesystem=s3, format="parquet", partitioning="hive"
    )
    con = duckdb.connect()
    con.register("insights", insights)
    reach = con.execute(
        "SELECT count(*), sum(value) FROM insights "
        f"WHERE snapshot_date = '{DAY}' AND metric = 'reach' AND breakdown IS NULL"
    ).fetchone()
    assert reach is not None and reach[0] > 0
    frame = (
        pl.scan_parquet(
            f"{uri}/media_insights/**/*.parquet",
            hive_partitioning=True,
            storage_options={
                "aws_endpoint_url": moto_endpoint,
                "aws_allow_http": "true",
                "aws_access_key_id": "testing",
                "aws_secret_access_key": "testing",
                "aws_region": "us-east-1",
            },
        )
        .filter((pl.col("snapshot_date") == DAY) & (pl.col("metric") == "reach"))
        .filter(pl.col("breakdown").is_null())
        .select(pl.len(), pl.col("value").sum())
        .collect()
    )
    assert frame.row(0) == reach
