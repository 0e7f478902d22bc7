"""The lake writer: row blocks -> Arrow RecordBatches -> Parquet part files, committed atomically.

Layout: `<root>/<dataset>/snapshot_date=YYYY-MM-DD/part-<run_id>-<seq:05d>.parquet` (`lake.layout`).

A reader (DuckDB, Polars, Spark, pyarrow.dataset) must never see half a file: each part is
published by the lake (`Lake.create`/`commit`: on a filesystem with rename it is written as
`.part-....parquet.tmp` beside its final name, which readers skip, then fsynced and renamed; on an
object store the final key is written, visible only once its upload completes). Either way a file
appears whole or not at all, and the checkpoint, which advances only after `close()`, never points
at data that could vanish.

Memory per dataset is bounded by one row group: blocks wait until a row group's worth is buffered,
`row_group_rows` rows or `row_group_mb` of Arrow memory, whichever comes first (a dataset's bytes
per row are learnt from its rows converted so far), then become one Arrow table written as one row
group (larger blocks are cut to that size), because every `ParquetWriter.write_table` call starts
new row groups. Each row group is sorted by the dataset's `SORT_KEYS`, so it carries tight min/max
statistics; files are not sorted as a whole (`harvester compact` sorts what it merges). When the
sort keys are among every block's shared `head` columns (media insights: account, media), the
blocks are sorted before the columns are built and Arrow sorts nothing; other rows (media, with
their captions and URLs) wait as Arrow, converted every `_CONVERT_ROWS` rows, and are sorted by
Arrow. Either way a row group is built a few thousand rows at a time, so the sink never holds it
both as Python objects and as Arrow, nor (sorting) twice as Arrow.

Epochs: `commit_epoch()` flushes every buffer and commits every open part, and returns the files
committed since the previous epoch (parts rotated at `target_file_mb` included), so the checkpoint
can record exactly which files hold the rows of the work it marks done.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate, chain
from operator import attrgetter, itemgetter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from harvester.config import OutputSettings
from harvester.lake import layout
from harvester.lake.fs import Lake, NewFile
from harvester.lake.schema import SCHEMAS, TIMESTAMP
from harvester.models import Dataset, Rows

__all__ = ["SORT_KEYS", "BadRowError", "CommittedFile", "ParquetSink", "SinkStatistics"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# Row order inside each write (hence each row group): what readers filter and join on first.
SORT_KEYS: dict[Dataset, tuple[str, ...]] = {
    Dataset.MEDIA: ("account_id", "media_id"),
    # A media's insight rows stay in the order Meta answered them (its blocks are sorted whole).
    Dataset.MEDIA_INSIGHTS: ("account_id", "media_id"),
    Dataset.ACCOUNT_INSIGHTS: ("account_id", "metric", "period", "end_time", "dimension"),
    Dataset.ACCOUNTS: ("account_id",),
    Dataset.ERRORS: ("account_id", "object_id", "stage"),
}
_KEY_INDEXES: dict[Dataset, tuple[int, ...]] = {
    dataset: tuple(int(SCHEMAS[dataset].get_field_index(key)) for key in keys)
    for dataset, keys in SORT_KEYS.items()
}
# The last sort key's column: a block whose head holds it sorts whole.
_LAST_KEY = {dataset: max(indexes) for dataset, indexes in _KEY_INDEXES.items()}
_WIDTHS = {dataset: len(schema) for dataset, schema in SCHEMAS.items()}
# Rows that cannot be sorted as whole blocks are converted to Arrow about this many rows at a
# time: counted in rows, not blocks, as a `media` block holds a whole insights batch's media
# (~64 rows of ~1.2 KB as Python objects, caption and URLs included).
_CONVERT_ROWS = 4096


class BadRowError(ValueError):
    """A row that does not fit its dataset's schema; nothing of its batch was written."""

    def __init__(self, dataset: Dataset, column: str, row_index: int, problem: str) -> None:
        super().__init__(f"{dataset.value}: column {column!r}, row {row_index}: {problem}")
        self.dataset = dataset
        self.column = column
        self.row_index = row_index


@dataclass(frozen=True)
class SinkStatistics:
    rows: dict[str, int]  # per dataset, committed rows
    files: int
    bytes: int


@dataclass(frozen=True)
class CommittedFile:
    """A committed part: its path relative to the lake root, its dataset and row count."""

    path: str
    dataset: str
    rows: int


@dataclass
class _Part:
    """One open part file: its writer and the lake's file it writes into."""

    dataset: Dataset
    writer: pq.ParquetWriter
    file: NewFile
    rows: int = 0


@dataclass
class _Buffer:
    """Blocks of one dataset waiting to fill a row group, and the dataset's open part."""

    blocks: list[Rows] = field(default_factory=list)
    # Blocks that cannot be sorted whole, converted early (unsorted): Arrow holds a row in a
    # fraction of the memory its Python tuple takes.
    converted: list[pa.Table] = field(default_factory=list)
    rows: int = 0  # in blocks and converted
    loose: int = 0  # in blocks
    converted_bytes: int = 0
    # Arrow bytes per row of the dataset's last converted rows (0: none converted yet), which
    # prices the blocks still held as Python rows against `row_group_mb`. Kept across flushes.
    row_bytes: float = 0.0
    part: _Part | None = None
    seq: int = 0

    def held_bytes(self) -> float:
        return self.converted_bytes + self.loose * self.row_bytes

    def learn(self, table: pa.Table) -> None:
        if table.num_rows:
            self.row_bytes = table.nbytes / table.num_rows


class ParquetSink:
    """Writes `Rows` blocks into the lake; `close()` commits, `abort()` drops what is uncommitted.

    Parts go where `lake.layout` puts them, are written with the lake's codec and are published
    by `lake`, each once `guard` lets it; `settings` gives the row group and file sizes. Not
    thread-safe for writers: the pipeline calls `write` from one worker thread at a time.
    `statistics()` may be read from another thread.
    """

    def __init__(
        self,
        lake: Lake,
        *,
        run_id: str,
        snapshot_date: date,
        settings: OutputSettings,
        guard: Callable[[], None] = lambda: None,
    ) -> None:
        self._lake = lake
        # Raises when the run may no longer publish (`lake.lock` lost): checked before every
        # part is committed, those rotated at `target_file_mb` between two epochs included.
        self._guard = guard
        self._run_id = run_id
        self._snapshot = snapshot_date.isoformat()
        self._settings = settings
        self._target_bytes = max(1, int(settings.target_file_mb * 1024 * 1024))
        self._group_bytes = settings.row_group_mb * 1024 * 1024
        self._buffers: dict[Dataset, _Buffer] = {d: _Buffer() for d in Dataset}
        self._lock = threading.Lock()  # guards the counters below, read by statistics()
        self._committed_rows: dict[str, int] = {d.value: 0 for d in Dataset}
        self._files = 0
        self._bytes = 0
        self._state = "open"  # -> "closed" | "aborted"
        self._epoch_files: list[CommittedFile] = []

    # ---- public contract -------------------------------------------------------------------

    def write(self, block: Rows) -> None:
        """Buffer a block; a row group's worth of rows is written as soon as it is buffered.

        Timestamps must be timezone-aware (pyarrow would read a naive one as UTC). A `BadRowError`
        discards the row group that holds the bad row (none of it was written); the caller is
        expected to `abort()`.
        """
        if self._state != "open":
            raise RuntimeError(f"ParquetSink is {self._state}; write() after close() or abort()")
        _check_widths(block)
        buffer = self._buffers[block.dataset]
        buffer.blocks.append(block)
        buffer.rows += len(block.rows)
        buffer.loose += len(block.rows)
        if buffer.rows >= self._settings.row_group_rows or buffer.held_bytes() >= self._group_bytes:
            self._flush(block.dataset, buffer)
        elif buffer.loose >= _CONVERT_ROWS:
            if not _sorted_whole(block):
                table = _to_table(block.dataset, buffer.blocks)
                buffer.learn(table)
                buffer.converted.append(table)
                buffer.converted_bytes += table.nbytes
                buffer.blocks, buffer.loose = [], 0
            elif not buffer.row_bytes:
                # Blocks that sort whole wait as Python rows: their first rows are converted
                # once, to price them, and dropped.
                buffer.learn(_to_table(block.dataset, buffer.blocks))

    def close(self) -> SinkStatistics:
        """Flush every buffer and commit every open part. Idempotent."""
        if self._state == "open":
            self.commit_epoch()
            self._state = "closed"
        return self.statistics()

    def commit_epoch(self) -> list[CommittedFile]:
        """Flush every buffer, commit every open part, and return the files committed since the
        previous epoch; every row written before this call is in one of them or an earlier one."""
        if self._state != "open":
            raise RuntimeError(f"ParquetSink is {self._state}; commit_epoch() after close()")
        for dataset, buffer in self._buffers.items():
            self._flush(dataset, buffer)
            self._commit(buffer)
        files, self._epoch_files = self._epoch_files, []
        return files

    @property
    def rotated(self) -> bool:
        """Whether a part was committed since the last epoch (a full file waits for a manifest)."""
        return bool(self._epoch_files)

    def abort(self) -> None:
        """Drop buffered rows and uncommitted parts; committed parts stay. Idempotent."""
        if self._state != "open":
            return
        self._state = "aborted"
        for buffer in self._buffers.values():
            buffer.blocks.clear()
            buffer.converted.clear()
            buffer.rows = buffer.loose = buffer.converted_bytes = 0
            part, buffer.part = buffer.part, None
            if part is not None:
                self._discard(part)

    def statistics(self) -> SinkStatistics:
        with self._lock:
            return SinkStatistics(dict(self._committed_rows), self._files, self._bytes)

    def _flush(self, dataset: Dataset, buffer: _Buffer) -> None:
        """Write the buffered blocks as row groups of about `row_group_rows` rows or `row_group_mb`;
        rotate full parts."""
        if not buffer.rows:
            return
        blocks, converted = buffer.blocks, buffer.converted
        buffer.blocks, buffer.converted, buffer.rows, buffer.loose = [], [], 0, 0
        buffer.converted_bytes = 0
        if not converted and all(map(_sorted_whole, blocks)):
            table = _whole_sorted(dataset, blocks)
        else:
            converted.append(_to_table(dataset, blocks))
            blocks.clear()  # the rows as Python objects: not held while Arrow sorts them
            table = _sorted(converted, [(name, "ascending") for name in SORT_KEYS[dataset]])
        buffer.learn(table)
        group = self._settings.row_group_rows
        if buffer.row_bytes:
            group = max(1, min(group, int(self._group_bytes / buffer.row_bytes)))
        # Whole blocks make a row group a little over `group` rows rather than leave a runt;
        # only a table of two groups or more (one huge block) is cut.
        step = group if table.num_rows >= 2 * group else table.num_rows
        for start in range(0, table.num_rows, step):
            part = buffer.part or self._open(dataset, buffer)
            chunk = table.slice(start, step)
            part.writer.write_table(chunk, row_group_size=chunk.num_rows)
            part.rows += chunk.num_rows
            if part.file.stream.tell() >= self._target_bytes:
                self._commit(buffer)

    def _open(self, dataset: Dataset, buffer: _Buffer) -> _Part:
        path = layout.part(dataset, self._snapshot, self._run_id, buffer.seq)
        buffer.seq += 1
        file = self._lake.create(path, fresh=True)
        try:
            writer = pq.ParquetWriter(
                file.stream,
                SCHEMAS[dataset],
                compression=self._lake.compression,
                write_statistics=True,
                use_dictionary=True,
            )
        except BaseException:
            self._lake.discard(file)
            raise
        buffer.part = _Part(dataset, writer, file)
        return buffer.part

    def _commit(self, buffer: _Buffer) -> None:
        if buffer.part is None:
            return
        self._guard()  # raising, the part stays open for `abort()` to drop: never published
        part, buffer.part = buffer.part, None
        try:
            part.writer.close()
            size = part.file.stream.tell()
        except BaseException:
            self._lake.discard(part.file)
            raise
        self._lake.commit(part.file)
        with self._lock:
            self._committed_rows[part.dataset.value] += part.rows
            self._files += 1
            self._bytes += size
        self._epoch_files.append(CommittedFile(part.file.path, part.dataset.value, part.rows))

    def _discard(self, part: _Part) -> None:
        # Best effort: abort() runs while another error propagates and must not replace it.
        # The writer is closed before its stream, or its finalizer would write to a closed file.
        with contextlib.suppress(Exception):
            part.writer.close()
        self._lake.discard(part.file)


def _check_widths(block: Rows) -> None:
    # Checked at write time, for the block that has the fault: zip would silently truncate.
    shared = len(block.head) + len(block.tail)
    expected = _WIDTHS[block.dataset] - shared
    if set(map(len, block.rows)) - {expected}:
        schema = SCHEMAS[block.dataset]
        index, row = next((i, r) for i, r in enumerate(block.rows) if len(r) != expected)
        raise BadRowError(
            block.dataset,
            "*",
            index,
            f"has {len(row) + shared} fields, expected {len(schema)} ({', '.join(schema.names)})",
        )


def _sorted_whole(block: Rows) -> bool:
    """Whether the block's sort keys are all shared columns (its rows sort together)."""
    return len(block.head) > _LAST_KEY[block.dataset]


def _to_table(dataset: Dataset, blocks: list[Rows]) -> pa.Table:
    """The blocks' rows in order, each column built with the exact schema type.

    A column a block shares (its head or tail) is converted once per block and repeated by
    Arrow: converting Python values costs ~30 ns each, repeating them in Arrow a few.
    """
    schema = SCHEMAS[dataset]
    blocks = [block for block in blocks if block.rows]
    shapes = {(len(block.head), len(block.tail)) for block in blocks}
    if len(shapes) > 1:  # mixed shapes (never from one stage): plain rows
        blocks = [Rows(dataset, [(*b.head, *row, *b.tail) for row in b.rows]) for b in blocks]
        shapes = {(0, 0)}
    [(head, tail)] = shapes or {(0, 0)}
    counts = list(map(len, map(attrgetter("rows"), blocks)))
    # Column by column over all rows at once, in C (`itemgetter` mapped over one flat list):
    # transposing block by block costs a zip per block, and `zip(*rows)` over a row group's
    # rows is slower still (one call with a million arguments).
    rows = list(chain.from_iterable(map(attrgetter("rows"), blocks)))
    varying = [list(map(itemgetter(i), rows)) for i in range(len(schema) - head - tail)]
    del rows  # a pointer per row: not held while Arrow converts the columns
    heads = list(map(attrgetter("head"), blocks))
    tails = list(map(attrgetter("tail"), blocks))
    shared = [
        *(list(map(itemgetter(i), heads)) for i in range(head)),
        *(list(map(itemgetter(i), tails)) for i in range(tail)),
    ]
    first_tail = len(schema) - tail
    repeat = _repeat_indices(counts) if shared else None
    arrays = []
    for index, schema_field in enumerate(schema):
        if head <= index < first_tail:
            arrays.append(_array(dataset, schema_field, varying[index - head], None))
        else:
            values = shared[index if index < head else index - first_tail + head]
            arrays.append(_array(dataset, schema_field, values, counts).take(repeat))
    return pa.Table.from_arrays(arrays, schema=schema)


def _whole_sorted(dataset: Dataset, blocks: list[Rows]) -> pa.Table:
    """Blocks that sort whole as one table in key order, emptying `blocks`: converted about
    `_CONVERT_ROWS` rows at a time, each piece's Python rows let go once converted, so a row
    group is not held as Python objects and as Arrow at once (131,072 `media_insights` rows are
    ~20 MB of each)."""
    pick = itemgetter(*_KEY_INDEXES[dataset])
    blocks.sort(key=lambda block: pick(block.head))
    blocks.reverse()  # taken from the end, in key order (equal keys keep their order)
    tables = []
    while blocks:
        piece, rows = [], 0
        while blocks and rows < _CONVERT_ROWS:
            piece.append(blocks.pop())
            rows += len(piece[-1].rows)
        tables.append(_to_table(dataset, piece))
    return pa.concat_tables(tables)


def _sorted(tables: list[pa.Table], keys: list[tuple[str, str]]) -> pa.Table:
    """The tables as one, sorted by `keys` (as `sort_by`), emptying `tables`.

    Column by column, each made contiguous and then taken in pieces of `_CONVERT_ROWS` rows, the
    size of the converted chunks it lets go, so the allocator reuses their memory: one `sort_by`
    of a row group of 131,072 `media` rows (~44 MB in Arrow) raised RSS by ~60 MB, this by ~15
    (measured), at the same CPU (a take from a chunked column would concatenate it per piece)."""
    table = pa.concat_tables(tables)
    tables.clear()
    order = pc.sort_indices(table, sort_keys=keys)
    pieces = [order.slice(start, _CONVERT_ROWS) for start in range(0, len(order), _CONVERT_ROWS)]
    schema, columns = table.schema, table.columns
    del table
    taken = []
    while columns:
        whole = columns.pop(0).combine_chunks()
        taken.append(pa.chunked_array([whole.take(piece) for piece in pieces], type=whole.type))
        del whole
    return pa.Table.from_arrays(taken, schema=schema)


def _repeat_indices(counts: list[int]) -> pa.Array:
    """[0] * counts[0] + [1] * counts[1] + ..., built by Arrow: a list array's parent indices."""
    offsets = pa.array([0, *accumulate(counts)], type=pa.int32())
    return pc.list_parent_indices(pa.ListArray.from_arrays(offsets, pa.nulls(offsets[-1].as_py())))


def _array(
    dataset: Dataset, schema_field: pa.Field, values: Sequence[Any], counts: list[int] | None
) -> pa.Array:
    """`values` as a column; value i stands for `counts[i]` rows if given, else for row i (bad
    cells are named by row)."""
    try:
        if schema_field.type == TIMESTAMP:
            array = pa.array(_epoch_micros(values), type=TIMESTAMP)
        else:
            array = pa.array(values, type=schema_field.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
        index, problem = _find_bad_cell(values, schema_field.type)
        raise BadRowError(dataset, schema_field.name, _row(index, counts), problem) from None
    if not schema_field.nullable and array.null_count:
        index = array.is_null().index(True).as_py()
        raise BadRowError(
            dataset, schema_field.name, _row(index, counts), "is null in a non-null column"
        )
    return array


def _row(index: int, counts: list[int] | None) -> int:
    return index if counts is None else sum(counts[:index])


def _epoch_micros(values: Sequence[Any]) -> list[int | None]:
    """Aware datetimes as microseconds since the epoch, converting each run of the same object
    once: plain rows (media, errors) repeat their block's fetched_at, and pyarrow's own
    conversion costs about 250 ns a value. A naive datetime raises TypeError (never guessed UTC).
    """
    out: list[int | None] = []
    append = out.append
    last: Any = None
    micros: int | None = None
    for value in values:
        if value is not last:
            last = value
            micros = None if value is None else (value - _EPOCH) // _MICROSECOND
        append(micros)
    return out


def _find_bad_cell(values: Sequence[Any], arrow_type: pa.DataType) -> tuple[int, str]:
    """Slow path, taken only after a column failed to convert: find the first offending cell."""
    for index, value in enumerate(values):
        if arrow_type == TIMESTAMP and isinstance(value, datetime) and value.tzinfo is None:
            return index, "is a naive datetime; timestamps must be timezone-aware"
        try:
            pa.array([value], type=arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
            # The value's type, not the value: a cell may hold text we must not echo into logs.
            return index, f"expected {arrow_type}, got {type(value).__name__}"
    return -1, f"column does not convert to {arrow_type}"
