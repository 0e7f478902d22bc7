"""The Parquet sink, judged by real readers (pyarrow.dataset and DuckDB), never by its own code."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from media_rows import media_row
from s3_server import make_bucket, moto_endpoint  # noqa: F401  (a fixture)

from harvester.config import OutputSettings
from harvester.lake import sink as sink_module
from harvester.lake.fs import Lake, open_lake
from harvester.lake.schema import SCHEMAS
from harvester.lake.sink import BadRowError, ParquetSink, SinkStatistics
from harvester.models import Dataset, Rows

RUN = "20260101T000000-abc"
DAY = date(2026, 1, 2)
FETCHED = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
# A non-UTC offset: the lake must store the same instant.
POSTED = datetime(2025, 12, 24, 20, 0, tzinfo=timezone(timedelta(hours=2)))

DUCKDB_TYPES = {
    pa.string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
    pa.timestamp("us", tz="UTC"): "TIMESTAMP WITH TIME ZONE",
}


def settings(
    root: Path,
    *,
    row_group_rows: int = 100,
    row_group_mb: float = 16.0,
    target_file_mb: float = 128.0,
) -> OutputSettings:
    return OutputSettings(
        str(root),
        row_group_rows=row_group_rows,
        row_group_mb=row_group_mb,
        target_file_mb=target_file_mb,
    )


def make_sink(root: Path, **kwargs: Any) -> ParquetSink:
    lake = open_lake(str(root))
    return ParquetSink(lake, run_id=RUN, snapshot_date=DAY, settings=settings(root, **kwargs))


def insight_rows(count: int, start: int = 0) -> list[tuple[Any, ...]]:
    """media_insights rows; every 7th value is None (an empty metric), never 0; every 5th
    other one a fraction (value null, value_float set)."""
    return [
        (
            "17841400000000001",
            f"{18000000000000000 + i}",
            "IMAGE",
            "FEED",
            POSTED,
            "profile_activity" if i % 3 == 0 else "reach",
            "lifetime",
            "action_type=bio_link_clicked" if i % 3 == 0 else None,
            None if i % 7 == 0 or i % 5 == 4 else i * 10,
            i + 0.37 if i % 5 == 4 and i % 7 else None,
            "v21.0",
            FETCHED,
            RUN,
        )
        for i in range(start, start + count)
    ]


SAMPLES: dict[Dataset, list[tuple[Any, ...]]] = {
    Dataset.MEDIA: [
        (
            "1784",
            "m1",
            None,
            "CAROUSEL_ALBUM",
            "FEED",
            POSTED,
            "https://x/p/1",
            "a caption",
            12,
            3,
            "https://cdn/m1.jpg",
            None,
            "Cx1",
            "sim",
            True,
            None,
            1,
            2,
            3,
            14,
            4,
            99,
            "owned",
            FETCHED,
            RUN,
        ),
        media_row("1784", "c1", "m1", "IMAGE", None, None, None, fetched_at=FETCHED, run_id=RUN),
    ],
    Dataset.MEDIA_INSIGHTS: insight_rows(8),
    Dataset.ACCOUNT_INSIGHTS: [
        (
            "1784",
            "reach",
            "day",
            POSTED,
            "follow_type",
            "FOLLOWER",
            12,
            None,
            "v21.0",
            FETCHED,
            RUN,
        ),
        ("1784", "follows", "day", POSTED, None, None, None, None, "v21.0", FETCHED, RUN),
        ("1784", "rate", "day", POSTED, None, None, None, 41.26, "v21.0", FETCHED, RUN),
    ],
    Dataset.ACCOUNTS: [
        ("1784", "sim", "Sim", None, "https://x", 1200, 80, 60, "https://p", "owned", FETCHED, RUN),
        ("1785", None, None, None, None, None, None, None, None, "competitor", FETCHED, RUN),
    ],
    Dataset.ERRORS: [
        ("1784", "m9", "insights", 400, 100, 2108006, "(#100) too old", "AbC", FETCHED, RUN),
        (None, None, "listing", None, None, None, None, None, FETCHED, RUN),
    ],
}


def parquet_names(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file())


def read_arrow(root: Path, dataset: Dataset) -> pa.Table:
    return pads.dataset(root / dataset.value, partitioning="hive", format="parquet").to_table()


def read_duckdb(root: Path, dataset: Dataset) -> duckdb.DuckDBPyRelation:
    pattern = f"{root}/{dataset.value}/**/*.parquet"
    return duckdb.sql(f"SELECT * FROM read_parquet('{pattern}', hive_partitioning=true)")


def sort_key(row: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple("" if v is None else str(v) for v in row)


def test_every_dataset_reads_back_exactly_with_the_schema(tmp_path: Path) -> None:
    sink = make_sink(tmp_path)
    for dataset, rows in SAMPLES.items():
        sink.write(Rows(dataset, rows))
    stats = sink.close()
    assert stats.rows == {d.value: len(rows) for d, rows in SAMPLES.items()}
    for dataset, rows in SAMPLES.items():
        schema = SCHEMAS[dataset]
        table = read_arrow(tmp_path, dataset)
        assert table.schema.names == [*schema.names, "snapshot_date"]
        assert table.schema.remove(len(schema)).equals(schema)
        assert table.column("snapshot_date").to_pylist() == [DAY.isoformat()] * len(rows)
        got = [tuple(r.values())[:-1] for r in table.to_pylist()]
        assert sorted(got, key=sort_key) == sorted(rows, key=sort_key)

        relation = read_duckdb(tmp_path, dataset)
        assert relation.columns == [*schema.names, "snapshot_date"]
        expected_types = [DUCKDB_TYPES[f.type] for f in schema] + ["DATE"]
        assert [str(t) for t in relation.types] == expected_types
        got = [r[:-1] for r in relation.fetchall()]
        assert sorted(got, key=sort_key) == sorted(rows, key=sort_key)
        assert {r[-1] for r in relation.fetchall()} == {DAY}


def test_layout_and_statistics(tmp_path: Path) -> None:
    sink = make_sink(tmp_path)
    sink.write(Rows(Dataset.MEDIA_INSIGHTS, insight_rows(250)))
    stats = sink.close()
    [part] = (tmp_path / "media_insights" / "snapshot_date=2026-01-02").iterdir()
    assert part.name == f"part-{RUN}-00000.parquet"
    assert stats == SinkStatistics(
        rows={"media": 0, "media_insights": 250, "account_insights": 0, "accounts": 0, "errors": 0},
        files=1,
        bytes=part.stat().st_size,
    )
    # Datasets without rows produce no folder at all.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["media_insights"]
    metadata = pq.ParquetFile(part).metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [
        100,
        100,
        50,
    ]
    assert metadata.row_group(0).column(0).compression == "ZSTD"
    assert metadata.row_group(0).column(0).statistics.has_min_max


def test_row_groups_span_batches(tmp_path: Path) -> None:
    sink = make_sink(tmp_path, row_group_rows=40)
    for start in range(0, 100, 5):
        sink.write(Rows(Dataset.MEDIA_INSIGHTS, insight_rows(5, start)))
    sink.close()
    [part] = tmp_path.rglob("*.parquet")
    metadata = pq.ParquetFile(part).metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [40, 40, 20]


def test_tiny_target_rotates_into_several_committed_files(tmp_path: Path) -> None:
    sink = make_sink(tmp_path, row_group_rows=500, target_file_mb=0.001)
    rows = insight_rows(3000)
    for start in range(0, 3000, 250):
        sink.write(Rows(Dataset.MEDIA_INSIGHTS, rows[start : start + 250]))
    stats = sink.close()
    names = parquet_names(tmp_path)
    assert names == [f"part-{RUN}-{seq:05d}.parquet" for seq in range(6)]
    assert stats.files == 6
    assert stats.rows["media_insights"] == 3000
    assert read_arrow(tmp_path, Dataset.MEDIA_INSIGHTS).num_rows == 3000
    assert read_duckdb(tmp_path, Dataset.MEDIA_INSIGHTS).aggregate("count(*)").fetchall() == [
        (3000,)
    ]


def test_readers_never_see_an_open_file(tmp_path: Path) -> None:
    sink = make_sink(tmp_path, row_group_rows=100)
    sink.write(Rows(Dataset.MEDIA_INSIGHTS, insight_rows(300)))  # three row groups, file still open
    folder = tmp_path / "media_insights" / "snapshot_date=2026-01-02"
    assert [p.name for p in folder.iterdir()] == [f".part-{RUN}-00000.parquet.tmp"]
    assert read_arrow(tmp_path, Dataset.MEDIA_INSIGHTS).num_rows == 0
    glob = duckdb.sql(f"SELECT * FROM glob('{tmp_path}/**/*.parquet')").fetchall()
    assert glob == []
    sink.close()
    assert parquet_names(tmp_path) == [f"part-{RUN}-00000.parquet"]
    assert read_arrow(tmp_path, Dataset.MEDIA_INSIGHTS).num_rows == 300


def test_abort_keeps_only_committed_files(tmp_path: Path) -> None:
    # ~2 KB parts: a 500-row media_insights group (~3.5 KB) fills one, a 500-row group of media
    # without details (~1.7 KB) does not.
    sink = make_sink(tmp_path, row_group_rows=500, target_file_mb=0.002)
    sink.write(Rows(Dataset.MEDIA_INSIGHTS, insight_rows(1000)))  # two committed parts
    sink.write(Rows(Dataset.MEDIA, SAMPLES[Dataset.MEDIA][1:] * 500))  # one open part
    sink.write(Rows(Dataset.ERRORS, SAMPLES[Dataset.ERRORS]))  # buffered only
    committed = sink.statistics()
    media_folder = tmp_path / "media" / "snapshot_date=2026-01-02"
    assert [p.name for p in media_folder.iterdir()] == [f".part-{RUN}-00000.parquet.tmp"]
    sink.abort()
    sink.abort()
    assert parquet_names(tmp_path) == [f"part-{RUN}-00000.parquet", f"part-{RUN}-00001.parquet"]
    assert list(media_folder.iterdir()) == []
    assert read_arrow(tmp_path, Dataset.MEDIA_INSIGHTS).num_rows == committed.rows["media_insights"]
    assert sink.statistics() == committed == sink.close()
    with pytest.raises(RuntimeError, match="aborted"):
        sink.write(Rows(Dataset.MEDIA, SAMPLES[Dataset.MEDIA]))


def test_close_is_idempotent_and_final(tmp_path: Path) -> None:
    sink = make_sink(tmp_path)
    sink.write(Rows(Dataset.ERRORS, SAMPLES[Dataset.ERRORS]))
    first = sink.close()
    assert sink.close() == first
    assert parquet_names(tmp_path) == [f"part-{RUN}-00000.parquet"]
    with pytest.raises(RuntimeError, match="closed"):
        sink.write(Rows(Dataset.ERRORS, SAMPLES[Dataset.ERRORS]))


def test_nulls_stay_null(tmp_path: Path) -> None:
    sink = make_sink(tmp_path)
    sink.write(Rows(Dataset.MEDIA_INSIGHTS, insight_rows(70)))
    sink.close()
    both = "value IS NULL AND value_float IS NULL"
    nulls = read_duckdb(tmp_path, Dataset.MEDIA_INSIGHTS).filter(both)
    assert nulls.aggregate("count(*)").fetchall() == [(10,)]
    zeros = read_duckdb(tmp_path, Dataset.MEDIA_INSIGHTS).filter("value = 0 OR value_float = 0")
    assert zeros.aggregate("count(*)").fetchall() == [(0,)]
    fractions = read_duckdb(tmp_path, Dataset.MEDIA_INSIGHTS).filter("value_float IS NOT NULL")
    assert fractions.aggregate("count(*), count(value)").fetchall() == [(12, 0)]


def bad(row_index: int, column: str, value: Any) -> list[tuple[Any, ...]]:
    rows = insight_rows(5)
    names = SCHEMAS[Dataset.MEDIA_INSIGHTS].names
    fields = list(rows[row_index])
    fields[names.index(column)] = value
    rows[row_index] = tuple(fields)
    return rows


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (bad(3, "value", "12"), "media_insights: column 'value', row 3: expected int64, got str"),
        (
            bad(1, "media_id", 42),
            "media_insights: column 'media_id', row 1: expected string, got int",
        ),
        (
            bad(4, "fetched_at", "2026-01-02"),
            "media_insights: column 'fetched_at', row 4: expected timestamp[us, tz=UTC], got str",
        ),
        (
            bad(2, "metric", None),
            "media_insights: column 'metric', row 2: is null in a non-null column",
        ),
        (
            [*insight_rows(4), (*insight_rows(1)[0][:11], datetime(2026, 1, 2), RUN)],
            "media_insights: column 'fetched_at', row 4: is a naive datetime; timestamps must be "
            "timezone-aware",
        ),
        (
            [*insight_rows(2), ("only", "three", "fields")],
            "media_insights: column '*', row 2: has 3 fields, expected 13 (account_id, media_id, "
            "media_type, media_product_type, media_timestamp, metric, period, breakdown, value, "
            "value_float, api_version, fetched_at, run_id)",
        ),
    ],
)
def test_bad_row_is_named_and_leaves_committed_files_alone(
    tmp_path: Path, rows: list[tuple[Any, ...]], message: str
) -> None:
    sink = make_sink(tmp_path, row_group_rows=5, target_file_mb=0.0001)
    sink.write(Rows(Dataset.MEDIA_INSIGHTS, insight_rows(5, start=100)))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert len(before) == 1
    with pytest.raises(BadRowError) as caught:
        sink.write(Rows(Dataset.MEDIA_INSIGHTS, rows))
    assert str(caught.value) == message
    sink.abort()
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_lake_put_is_atomic_and_replaces(tmp_path: Path) -> None:
    lake = open_lake(str(tmp_path))
    lake.put(f"_runs/{RUN}.json", json.dumps({"rows": 1}).encode())
    lake.put(f"_runs/{RUN}.json", json.dumps({"rows": 2}).encode())
    assert parquet_names(tmp_path) == [f"{RUN}.json"]
    assert json.loads((tmp_path / "_runs" / f"{RUN}.json").read_text()) == {"rows": 2}
    # The run folder starts with '_', so dataset readers pointed at the root skip it.
    for unsafe in ("../escape.json", "/abs.json", "a//b.json", ""):
        with pytest.raises(ValueError, match="plain relative path"):
            lake.put(unsafe, b"{}")


def test_relative_root_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    lake = open_lake("lake")
    sink = ParquetSink(lake, run_id=RUN, snapshot_date=DAY, settings=settings(Path("lake")))
    sink.write(Rows(Dataset.ERRORS, SAMPLES[Dataset.ERRORS]))
    monkeypatch.chdir("/")
    sink.close()
    assert read_arrow(tmp_path / "lake", Dataset.ERRORS).num_rows == 2


def keys(lake: Lake) -> list[str]:
    selector = pafs.FileSelector(lake.root, recursive=True, allow_not_found=True)
    infos = lake.fs.get_file_info(selector)
    return sorted(lake.relative(i.path) for i in infos if i.type == pafs.FileType.File)


def test_object_store_writes_final_names_directly(moto_endpoint: str) -> None:  # noqa: F811
    # No temp name or rename on S3: a part's key appears when its upload completes, not before.
    make_bucket(moto_endpoint, "sink-final")
    lake = open_lake("s3://sink-final/lake", s3_endpoint=moto_endpoint)
    sink = ParquetSink(lake, run_id=RUN, snapshot_date=DAY, settings=settings(Path("unused")))
    sink.write(Rows(Dataset.MEDIA_INSIGHTS, insight_rows(150)))  # a row group written, part open
    sink.write(Rows(Dataset.MEDIA, SAMPLES[Dataset.MEDIA] * 150))
    assert keys(lake) == []
    sink.abort()  # the open parts, closed (pyarrow cannot abandon an upload), are removed again
    assert keys(lake) == []

    sink = ParquetSink(lake, run_id=RUN, snapshot_date=DAY, settings=settings(Path("unused")))
    sink.write(Rows(Dataset.MEDIA_INSIGHTS, insight_rows(150)))
    sink.close()
    assert keys(lake) == [f"media_insights/snapshot_date=2026-01-02/part-{RUN}-00000.parquet"]
    table = pads.dataset(
        lake.full("media_insights"), filesystem=lake.fs, format="parquet", partitioning="hive"
    ).to_table()
    assert table.num_rows == 150


def test_each_write_is_sorted_by_account_media_metric(tmp_path: Path) -> None:
    sink = make_sink(tmp_path, row_group_rows=50)
    rows = insight_rows(100)
    sink.write(Rows(Dataset.MEDIA_INSIGHTS, rows[::-1]))  # newest media first, as Meta lists
    sink.close()
    [part] = tmp_path.rglob("*.parquet")
    parquet = pq.ParquetFile(part)
    keys = list(sink_module.SORT_KEYS[Dataset.MEDIA_INSIGHTS])
    for index in range(parquet.metadata.num_row_groups):
        group = parquet.read_row_group(index)
        assert group.equals(group.sort_by([(k, "ascending") for k in keys]))
    assert parquet.metadata.num_row_groups == 2


def test_a_row_group_of_blocks_built_in_pieces_is_one_group_in_key_order(tmp_path: Path) -> None:
    # More rows than one piece of conversion (`_CONVERT_ROWS`), newest media first, and each
    # media's values in two blocks (as a breakdown's values follow its totals): the blocks are
    # converted a piece at a time, and a media's second block still follows its first.
    sink = make_sink(tmp_path, row_group_rows=1_000_000)
    media = sink_module._CONVERT_ROWS // 3 + 7
    blocks = []
    for m in range(media, 0, -1):
        first = media_block(m, account=f"1784{m % 2}")
        second = Rows(
            first.dataset, [("follows", "lifetime", None, m, None)], first.head, first.tail
        )
        blocks += [first, second]
    for block in blocks:
        sink.write(block)
    sink.close()
    [part] = tmp_path.rglob("*.parquet")
    parquet = pq.ParquetFile(part)
    assert parquet.metadata.num_row_groups == 1
    ordered = sorted(blocks, key=lambda block: block.head[:2])
    expected = [(*b.head, *v, *b.tail) for b in ordered for v in b.rows]
    assert [tuple(r.values()) for r in parquet.read().to_pylist()] == expected


def test_commit_epoch_returns_the_files_it_and_rotation_committed(tmp_path: Path) -> None:
    sink = make_sink(tmp_path, row_group_rows=500, target_file_mb=0.002)
    sink.write(Rows(Dataset.MEDIA_INSIGHTS, insight_rows(1000)))  # rotates two full parts
    sink.write(Rows(Dataset.ERRORS, SAMPLES[Dataset.ERRORS]))  # buffered only
    assert sink.rotated
    first = sink.commit_epoch()
    assert [(f.dataset, f.rows) for f in first] == [
        ("media_insights", 500),
        ("media_insights", 500),
        ("errors", 2),
    ]
    assert {f.path for f in first} == {
        p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet")
    }
    assert not sink.rotated and sink.commit_epoch() == []
    sink.write(Rows(Dataset.ERRORS, SAMPLES[Dataset.ERRORS]))
    [second] = sink.commit_epoch()
    assert second.path == f"errors/snapshot_date=2026-01-02/part-{RUN}-00001.parquet"
    assert sink.close().rows["errors"] == 4


def media_block(media: int, account: str = "17841400000000001") -> Rows:
    """One media's insights as the insights stage emits them: values with shared head and tail."""
    head = (account, f"{18000000000000000 + media}", "IMAGE", "FEED", POSTED)
    values = [("reach", "lifetime", None, media, None), ("likes", "lifetime", None, None, None)]
    values.append(("profile_activity", "lifetime", "action_type=bio_link_clicked", 3, None))
    return Rows(Dataset.MEDIA_INSIGHTS, values, head, ("v25.0", FETCHED, RUN))


def test_blocks_with_shared_columns_read_back_whole_and_sorted_by_media(tmp_path: Path) -> None:
    sink = make_sink(tmp_path, row_group_rows=30)
    blocks = [media_block(m, account=f"1784{m % 2}") for m in range(25, 0, -1)]  # newest first
    for block in blocks:
        sink.write(block)
    sink.write(Rows(Dataset.MEDIA_INSIGHTS, insight_rows(2, start=100)))  # plain rows too
    sink.close()
    [part] = tmp_path.rglob("*.parquet")
    parquet = pq.ParquetFile(part)
    # 75 + 2 rows in groups of whole blocks: 30 (10 blocks), 30, then the 17 flushed at close.
    assert [parquet.metadata.row_group(i).num_rows for i in range(3)] == [30, 30, 17]
    expected = [(*b.head, *v, *b.tail) for b in blocks for v in b.rows] + insight_rows(2, start=100)
    got = [tuple(r.values())[:-1] for r in read_arrow(tmp_path, Dataset.MEDIA_INSIGHTS).to_pylist()]
    assert sorted(got, key=sort_key) == sorted(expected, key=sort_key)
    for index in range(parquet.metadata.num_row_groups):
        group = parquet.read_row_group(index).to_pylist()
        keys = [(r["account_id"], r["media_id"]) for r in group]
        assert keys == sorted(keys)
        # Within a media, rows keep the order Meta answered them in.
        by_media: dict[str, list[str]] = {}
        for r in group:
            by_media.setdefault(r["media_id"], []).append(r["metric"])
        assert all(
            m in (["reach", "likes", "profile_activity"], ["reach"], ["profile_activity"])
            for m in by_media.values()
        )


def test_a_bad_shared_cell_is_named_by_its_first_row(tmp_path: Path) -> None:
    sink = make_sink(tmp_path, row_group_rows=9)
    good, bad = media_block(2), media_block(1)
    bad = Rows(bad.dataset, bad.rows, (*bad.head[:4], "2025-12-24"), bad.tail)
    sink.write(good)
    sink.write(bad)
    with pytest.raises(BadRowError) as caught:
        sink.write(media_block(3))
    # Sorted by media id, the bad media's block comes first: rows 0-2.
    assert str(caught.value) == (
        "media_insights: column 'media_timestamp', row 0: expected timestamp[us, tz=UTC], got str"
    )


def test_a_block_of_the_wrong_width_is_refused_at_write(tmp_path: Path) -> None:
    sink = make_sink(tmp_path)
    block = media_block(1)
    with pytest.raises(BadRowError) as caught:
        sink.write(Rows(block.dataset, [*block.rows, ("reach", 5)], block.head, block.tail))
    assert str(caught.value).startswith(
        "media_insights: column '*', row 3: has 10 fields, expected 13"
    )


def plain_media_rows(count: int) -> list[tuple[Any, ...]]:
    """`media` rows (which the sink cannot sort as whole blocks), newest id first."""
    return [
        media_row(
            f"1784{i % 3}",
            f"m{i:06d}",
            None,
            "IMAGE",
            "FEED",
            POSTED,
            None,
            fetched_at=FETCHED,
            run_id=RUN,
        )
        for i in range(count, 0, -1)
    ]


def one_row_group(tmp_path: Path) -> list[tuple[Any, ...]]:
    """The rows of the one Parquet file written, which must hold one row group."""
    [part] = tmp_path.rglob("*.parquet")
    parquet = pq.ParquetFile(part)
    assert parquet.metadata.num_row_groups == 1
    return [tuple(r.values()) for r in parquet.read().to_pylist()]


def test_plain_rows_in_large_blocks_wait_as_arrow_once_a_chunk_of_rows_is_buffered(
    tmp_path: Path,
) -> None:
    # `media` blocks as the pipeline sends them, one per insights batch of tens of media: they
    # wait as Arrow once `_CONVERT_ROWS` rows are buffered, however few blocks hold them.
    sink = make_sink(tmp_path, row_group_rows=1_000_000)
    per_block = 64
    count = sink_module._CONVERT_ROWS + per_block
    rows = plain_media_rows(count)
    for start in range(0, count, per_block):
        sink.write(Rows(Dataset.MEDIA, rows[start : start + per_block]))
    buffer = sink._buffers[Dataset.MEDIA]
    assert [table.num_rows for table in buffer.converted] == [sink_module._CONVERT_ROWS]
    assert [len(block.rows) for block in buffer.blocks] == [per_block]
    sink.close()
    got = one_row_group(tmp_path)
    assert got == sorted(rows, key=lambda row: (row[0], row[1]))


def test_rows_converted_early_still_make_one_sorted_row_group(tmp_path: Path) -> None:
    # Plain media rows, one block each as the pipeline sends them: more blocks than the sink
    # holds as Python objects before converting them to Arrow.
    sink = make_sink(tmp_path, row_group_rows=1_000_000)
    rows = plain_media_rows(9000)
    for row in rows:
        sink.write(Rows(Dataset.MEDIA, [row]))
    sink.close()
    got = one_row_group(tmp_path)
    assert got == sorted(rows, key=lambda row: (row[0], row[1]))


def group_sizes(root: Path) -> list[tuple[int, int]]:
    """(rows, Arrow bytes) of each row group of the one Parquet file written."""
    [part] = root.rglob("*.parquet")
    parquet = pq.ParquetFile(part)
    groups = [parquet.read_row_group(i) for i in range(parquet.metadata.num_row_groups)]
    return [(group.num_rows, group.nbytes) for group in groups]


def test_wide_rows_make_row_groups_of_row_group_mb_not_of_row_group_rows(tmp_path: Path) -> None:
    # `media` rows with long permalinks, in blocks of 64 as the pipeline sends them. The budget
    # is 0.5 MB, under the `_CONVERT_ROWS` rows converted before any row is priced, so the first
    # flush is of those, cut to the budget (its remainder a smaller group); every later group
    # closes within one block of it.
    budget = 0.5 * 1024 * 1024
    sink = make_sink(tmp_path, row_group_rows=1_000_000, row_group_mb=0.5)
    rows = [
        (*row[:6], "https://www.instagram.com/p/" + "x" * 400, *row[7:])
        for row in plain_media_rows(20_000)
    ]
    for start in range(0, len(rows), 64):
        sink.write(Rows(Dataset.MEDIA, rows[start : start + 64]))
    sink.close()
    sizes = group_sizes(tmp_path)
    row_bytes = sizes[0][1] / sizes[0][0]
    assert sum(n for n, _ in sizes) == len(rows)
    assert len(sizes) >= 20
    assert all(size <= budget + 64 * row_bytes for _, size in sizes)
    assert all(size >= budget - 64 * row_bytes for _, size in sizes[5:-1])
    assert len({n for n, _ in sizes[:4]}) == 1
    got = [tuple(r.values())[:-1] for r in read_arrow(tmp_path, Dataset.MEDIA).to_pylist()]
    assert sorted(got) == sorted(rows)


def test_blocks_that_sort_whole_are_priced_once_and_grouped_by_row_group_mb(
    tmp_path: Path,
) -> None:
    # media_insights blocks wait as Python rows; their first `_CONVERT_ROWS` rows are converted
    # once to price them, and from then on a group closes at the budget instead of at 1M rows.
    budget = 0.1 * 1024 * 1024
    sink = make_sink(tmp_path, row_group_rows=1_000_000, row_group_mb=0.1)
    blocks = [media_block(m, account=f"1784{m % 2}") for m in range(6000, 0, -1)]
    for block in blocks:
        sink.write(block)
    buffer = sink._buffers[Dataset.MEDIA_INSIGHTS]
    assert buffer.converted == [] and buffer.row_bytes > 0
    sink.close()
    sizes = group_sizes(tmp_path)
    assert sum(n for n, _ in sizes) == 3 * len(blocks)
    assert len(sizes) >= 10
    assert all(size <= budget * 1.05 for _, size in sizes)
    ordered = sorted(blocks, key=lambda block: block.head[:2])
    expected = [(*b.head, *v, *b.tail) for b in ordered for v in b.rows]
    [part] = tmp_path.rglob("*.parquet")
    got = [tuple(r.values()) for r in pq.ParquetFile(part).read().to_pylist()]
    assert sorted(got, key=sort_key) == sorted(expected, key=sort_key)
