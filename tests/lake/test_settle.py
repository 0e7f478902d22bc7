"""Settling: the files a same-day job supersedes are rewritten with the lake's configured codec."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from harvester.cli import demo_config
from harvester.config import parse_config
from harvester.harvest.pipeline import run_harvest
from harvester.models import HarvestWindow
from harvester.simulator import SimulatorSettings, run_simulator

pytestmark = pytest.mark.anyio

CLOCK = datetime(2026, 3, 1, 13, tzinfo=UTC)
WORLD = SimulatorSettings(
    seed=6, accounts=3, media_per_account=1095, now=CLOCK - timedelta(hours=1)
)


def parts(lake: Path) -> dict[Path, tuple[int, str]]:
    """Every committed part file: its rows and the codec of its first column chunk."""
    out = {}
    for path in lake.glob("*/snapshot_date=*/*.parquet"):
        metadata = pq.ParquetFile(path).metadata
        out[path] = (metadata.num_rows, str(metadata.row_group(0).column(0).compression))
    return out


@pytest.mark.parametrize(("compression", "expected"), [("gzip", "GZIP"), ("snappy", "SNAPPY")])
async def test_superseded_files_are_rewritten_with_the_configured_codec(
    tmp_path: Path, compression: str, expected: str
) -> None:
    settings = {"output": {"compression": compression}, "harvest": {"lookback_days": 3}}
    async with run_simulator(WORLD) as sim:
        toml_text, kwargs = demo_config(sim.world_info(), tmp_path, settings)
        config = parse_config(toml_text, **kwargs)
        await run_harvest(config, window=HarvestWindow(CLOCK - timedelta(days=10)), now=CLOCK)
        backfill = parts(tmp_path)
        # A same-day sweep supersedes the backfill's rows of recent media: its files are rewritten.
        await run_harvest(config, mode="sweep", now=CLOCK + timedelta(hours=1))
    after = parts(tmp_path)

    rewritten = [p for p, (rows, _) in backfill.items() if p in after and after[p][0] < rows]
    assert rewritten
    assert {after[p][1] for p in rewritten} == {expected}
    assert {codec for _, codec in after.values()} == {expected}
