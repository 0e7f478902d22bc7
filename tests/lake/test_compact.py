"""`harvester compact`: small files merged into sorted ones, atomically, and crash-safe."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from harvester.cli import main
from harvester.config import OutputSettings
from harvester.lake.checkpoint import Checkpoint, JobSpec, Unit, start_job
from harvester.lake.compact import compact, recover_compactions
from harvester.lake.fs import Lake, open_lake, open_output
from harvester.lake.settle import settle
from harvester.lake.sink import SORT_KEYS, ParquetSink
from harvester.models import Dataset, Rows

DAY = date(2026, 3, 1)
CLOCK = datetime(2026, 3, 1, 12, tzinfo=UTC)
PARTITION = f"media_insights/snapshot_date={DAY}"
PLANS = "_state/compactions"  # spelled out: the lake's layout is a contract


def unit(n: int) -> Unit:
    fetched = datetime(2026, 3, 1, tzinfo=UTC)
    # Accounts and media in descending order, so sorting is visible.
    account, media = f"{9 - n % 3}", f"m{99 - n:02d}"
    rows = [
        (
            account,
            media,
            "IMAGE",
            "FEED",
            None,
            metric,
            "lifetime",
            None,
            n,
            None,
            "v25.0",
            fetched,
            "r",
        )
        for metric in ("saved", "reach")
    ]
    return Unit("media", (media,), [Rows(Dataset.MEDIA_INSIGHTS, rows)])


def lake_of_small_files(root: Path, epochs: int = 6, *, finish: bool = True) -> Lake:
    lake = open_lake(str(root))
    spec = JobSpec("backfill", ("9",), "v25.0", None, None, ())
    state = start_job(lake, spec, "20260301T120000Z-aaaaaa", clock=CLOCK, snapshot_date=DAY,
                      windows=dict)  # fmt: skip
    settings = OutputSettings(str(root), row_group_rows=4)
    sink = ParquetSink(lake, run_id=state.runs[-1], snapshot_date=DAY, settings=settings)
    checkpoint = Checkpoint(lake, state, state.runs[-1], every_seconds=3600)
    for epoch in range(epochs):
        checkpoint.write(sink, [unit(epoch * 3 + i) for i in range(3)])
        checkpoint.commit(sink)
    if finish:
        sink.close()
        checkpoint.finish()
        settle(lake)
    return lake


def rows(root: Path) -> Counter[tuple[Any, ...]]:
    table = pads.dataset(root / "media_insights", format="parquet", partitioning="hive").to_table()
    return Counter(zip(*table.to_pydict().values(), strict=True))


def files(root: Path) -> list[Path]:
    return sorted((root / PARTITION).glob("*.parquet"))


def test_small_files_become_one_sorted_file_with_the_same_rows(tmp_path: Path) -> None:
    lake = lake_of_small_files(tmp_path)
    before = rows(tmp_path)
    assert len(files(tmp_path)) == 6

    report = compact(lake, row_group_rows=5)

    [merged] = files(tmp_path)
    assert report.merged == [(f"{PARTITION}/{merged.name}", 6, sum(before.values()))]
    assert rows(tmp_path) == before
    table = pq.read_table(merged)
    keys = list(SORT_KEYS[Dataset.MEDIA_INSIGHTS])
    assert table.equals(table.sort_by([(k, "ascending") for k in keys]))
    assert pq.ParquetFile(merged).metadata.num_row_groups == 8  # 36 rows in groups of 5
    assert not list((tmp_path / PLANS).glob("*"))
    assert compact(lake).merged == []  # nothing small is left


def codec(path: Path) -> str:
    return str(pq.ParquetFile(path).metadata.row_group(0).column(0).compression)


@pytest.mark.parametrize(("compression", "expected"), [("snappy", "SNAPPY"), ("gzip", "GZIP")])
def test_a_merged_file_has_the_configured_codec(
    tmp_path: Path, compression: str, expected: str
) -> None:
    lake_of_small_files(tmp_path)
    assert {codec(path) for path in files(tmp_path)} == {"ZSTD"}
    configured = open_output(OutputSettings(str(tmp_path), compression=compression))
    report = compact(configured)
    [merged] = files(tmp_path)
    assert report.merged[0][0] == f"{PARTITION}/{merged.name}"
    assert codec(merged) == expected


def test_a_date_with_an_unfinished_job_is_left_alone(tmp_path: Path) -> None:
    lake = lake_of_small_files(tmp_path, finish=False)
    names = files(tmp_path)
    report = compact(lake)
    assert report.merged == []
    assert report.skipped == [(PARTITION, "a harvest job of this date is not finished")]
    assert files(tmp_path) == names


def test_a_crash_after_the_output_rolls_forward_and_before_it_rolls_back(tmp_path: Path) -> None:
    lake = lake_of_small_files(tmp_path)
    inputs = [f"{PARTITION}/{p.name}" for p in files(tmp_path)]
    before = rows(tmp_path)
    # Crashed after committing the output, before deleting the inputs: readers see rows twice.
    output = f"{PARTITION}/part-compact-crashed-00000.parquet"
    tables = [pq.read_table(tmp_path / p) for p in inputs[:3]]
    lake.write_parquet(output, pa.concat_tables(tables), row_group_rows=100)
    lake.put_json(f"{PLANS}/crashed.json", {"inputs": inputs[:3], "output": output})
    # Crashed before writing its output: nothing visible changed.
    lake.put_json(f"{PLANS}/early.json", {"inputs": inputs[3:], "output": f"{PARTITION}/x.parquet"})
    assert sum(rows(tmp_path).values()) > sum(before.values())

    assert recover_compactions(lake) == 2
    assert rows(tmp_path) == before
    assert len(files(tmp_path)) == 4  # the output and the three untouched inputs
    assert not list((tmp_path / PLANS).glob("*"))


def test_the_cli_compacts_one_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake_of_small_files(tmp_path)
    assert main(["compact", str(tmp_path), "--dataset", "media_insights", "--date", str(DAY)]) == 0
    out = capsys.readouterr().out
    assert "6 files merged, 36 rows" in out
    assert len(files(tmp_path)) == 1
