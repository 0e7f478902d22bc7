"""The lake writer: row blocks -> Arrow RecordBatches -> Parquet part files, committed atomically.

Layout: `<root>/<dataset>/snapshot_date=YYYY-MM-DD/part-<run_id>-<seq:05d>.parquet`.

A reader (DuckDB, Polars, Spark, pyarrow.dataset) must never see half a file. On a filesystem
with rename, a part is written as `.part-....parquet.tmp` beside its final name (readers skip names
starting with '.' and do not glob `*.tmp`), closed, fsynced and renamed. Object stores have no
rename (a move is copy + delete), but an object becomes visible only when its upload completes, so
there the final key is written directly. Either way a file appears whole or not at all, and the
checkpoint, which advances only after `close()`, never points at data that could vanish.

Memory per dataset is bounded by `batch_rows` Python tuples plus `row_group_rows` Arrow rows: rows
are transposed once per batch, and batches are held back until a full row group is ready because
every `ParquetWriter.write_table` call starts new row groups. Each such write is sorted by the
dataset's `SORT_KEYS` (account, object, metric), so every row group is sorted and carries tight
min/max statistics; files are not sorted as a whole (`harvester compact` sorts what it merges).

Epochs: `commit_epoch()` flushes every buffer and commits every open part, and returns the files
committed since the previous epoch (parts rotated at `target_file_mb` included), so the checkpoint
can record exactly which files hold the rows of the work it marks done.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from harvester.config import OutputSettings
from harvester.lake import OBJECT_STORES, base_type, fsync
from harvester.models import Rows
from harvester.schema import SCHEMAS, TIMESTAMP, Dataset

__all__ = ["SORT_KEYS", "BadRowError", "CommittedFile", "ParquetSink", "SinkStatistics"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# Row order inside each write (hence each row group): what readers filter and join on first.
SORT_KEYS: dict[Dataset, tuple[str, ...]] = {
    Dataset.MEDIA: ("account_id", "media_id"),
    Dataset.MEDIA_INSIGHTS: ("account_id", "media_id", "metric", "period", "breakdown"),
    Dataset.ACCOUNT_INSIGHTS: ("account_id", "metric", "period", "end_time", "dimension"),
    Dataset.ERRORS: ("account_id", "object_id", "stage"),
}


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
    """One open part file: its writer, its stream, and its temporary and final names."""

    dataset: Dataset
    writer: pq.ParquetWriter
    stream: Any  # pyarrow NativeFile
    temp_path: str
    final_path: str
    rows: int = 0


@dataclass
class _Buffer:
    """Rows of one dataset waiting to become a batch, and batches waiting to fill a row group."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    pending: list[pa.RecordBatch] = field(default_factory=list)
    pending_rows: int = 0
    part: _Part | None = None
    seq: int = 0


class ParquetSink:
    """Writes `Rows` blocks into the lake; `close()` commits, `abort()` drops what is uncommitted.

    Not thread-safe for writers: the pipeline calls `write` from one worker thread at a time.
    `statistics()` may be read from another thread.
    """

    def __init__(
        self,
        root: str,
        *,
        run_id: str,
        snapshot_date: date,
        settings: OutputSettings,
        filesystem: pafs.FileSystem | None = None,
    ) -> None:
        if filesystem is None:
            if "://" in root:
                filesystem, root = pafs.FileSystem.from_uri(root)
            else:
                filesystem, root = pafs.LocalFileSystem(), os.path.abspath(root)
        self._fs: pafs.FileSystem = filesystem
        self._root = root.rstrip("/")
        self._run_id = run_id
        self._snapshot = snapshot_date.isoformat()
        self._settings = settings
        self._target_bytes = max(1, int(settings.target_file_mb * 1024 * 1024))
        self._rename = base_type(filesystem) not in OBJECT_STORES
        self._local = base_type(filesystem) == "local" and not isinstance(
            filesystem, pafs.SubTreeFileSystem
        )
        self._buffers: dict[Dataset, _Buffer] = {d: _Buffer() for d in Dataset}
        self._lock = threading.Lock()  # guards the counters below, read by statistics()
        self._committed_rows: dict[str, int] = {d.value: 0 for d in Dataset}
        self._files = 0
        self._bytes = 0
        self._state = "open"  # -> "closed" | "aborted"
        self._epoch_files: list[CommittedFile] = []

    # ---- public contract -------------------------------------------------------------------

    def write(self, block: Rows) -> None:
        """Buffer a block; every `batch_rows` rows become one RecordBatch.

        Timestamps must be timezone-aware (pyarrow would read a naive one as UTC). A `BadRowError`
        discards the batch that holds the bad row (none of it was written); the caller is expected
        to `abort()`.
        """
        if self._state != "open":
            raise RuntimeError(f"ParquetSink is {self._state}; write() after close() or abort()")
        schema = SCHEMAS[block.dataset]
        width = len(schema)
        for index, row in enumerate(block.rows):
            # zip(*rows) would silently truncate a short row, so widths are checked here.
            if len(row) != width:
                raise BadRowError(
                    block.dataset,
                    "*",
                    index,
                    f"has {len(row)} fields, expected {width} ({', '.join(schema.names)})",
                )
        buffer = self._buffers[block.dataset]
        buffer.rows.extend(block.rows)
        batch_rows = self._settings.batch_rows
        while len(buffer.rows) >= batch_rows:
            chunk = buffer.rows[:batch_rows]
            del buffer.rows[:batch_rows]
            self._add_batch(block.dataset, buffer, chunk)

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
            if buffer.rows:
                chunk, buffer.rows = buffer.rows, []
                self._add_batch(dataset, buffer, chunk)
            self._write_pending(dataset, buffer, force=True)
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
            buffer.rows.clear()
            buffer.pending.clear()
            part, buffer.part = buffer.part, None
            if part is not None:
                self._discard(part)

    def statistics(self) -> SinkStatistics:
        with self._lock:
            return SinkStatistics(dict(self._committed_rows), self._files, self._bytes)

    def _add_batch(self, dataset: Dataset, buffer: _Buffer, rows: list[tuple[Any, ...]]) -> None:
        buffer.pending.append(_to_batch(dataset, rows))
        buffer.pending_rows += len(rows)
        self._write_pending(dataset, buffer, force=False)

    def _write_pending(self, dataset: Dataset, buffer: _Buffer, *, force: bool) -> None:
        """Write whole row groups (all pending rows if `force`); rotate the part once it is full."""
        group = self._settings.row_group_rows
        if not buffer.pending_rows or (buffer.pending_rows < group and not force):
            return
        table = pa.Table.from_batches(buffer.pending, schema=SCHEMAS[dataset])
        ready = table.num_rows if force else table.num_rows - table.num_rows % group
        rest = table.slice(ready)
        buffer.pending = rest.to_batches() if rest.num_rows else []
        buffer.pending_rows = rest.num_rows
        part = buffer.part or self._open(dataset, buffer)
        sort = [(key, "ascending") for key in SORT_KEYS[dataset]]
        part.writer.write_table(table.slice(0, ready).sort_by(sort), row_group_size=group)
        part.rows += ready
        if part.stream.tell() >= self._target_bytes:
            self._commit(buffer)

    def _open(self, dataset: Dataset, buffer: _Buffer) -> _Part:
        folder = f"{self._root}/{dataset.value}/snapshot_date={self._snapshot}"
        name = f"part-{self._run_id}-{buffer.seq:05d}.parquet"
        buffer.seq += 1
        final = f"{folder}/{name}"
        temp = f"{folder}/.{name}.tmp" if self._rename else final
        if self._rename:
            self._fs.create_dir(folder, recursive=True)
        stream = self._fs.open_output_stream(temp)
        writer = pq.ParquetWriter(
            stream,
            SCHEMAS[dataset],
            compression=self._settings.compression,
            write_statistics=True,
            use_dictionary=True,
        )
        buffer.part = _Part(dataset, writer, stream, temp, final)
        return buffer.part

    def _commit(self, buffer: _Buffer) -> None:
        part, buffer.part = buffer.part, None
        if part is None:
            return
        try:
            part.writer.close()
            size = part.stream.tell()
            part.stream.close()
            if self._rename:
                self._publish(part.temp_path, part.final_path)
        except BaseException:
            with contextlib.suppress(Exception):
                part.stream.close()
            _delete_quietly(self._fs, part.temp_path)
            raise
        with self._lock:
            self._committed_rows[part.dataset.value] += part.rows
            self._files += 1
            self._bytes += size
        relative = part.final_path[len(self._root) + 1 :]
        self._epoch_files.append(CommittedFile(relative, part.dataset.value, part.rows))

    def _publish(self, temp: str, final: str) -> None:
        if self._local:
            # Without fsync a crash after the rename can leave a committed name with no data.
            fsync(temp)
            os.replace(temp, final)
            fsync(os.path.dirname(final))
        else:
            self._fs.move(temp, final)

    def _discard(self, part: _Part) -> None:
        # Best effort: abort() runs while another error propagates and must not replace it.
        # The writer is closed before its stream, or its finalizer would write to a closed file.
        with contextlib.suppress(Exception):
            part.writer.close()
        with contextlib.suppress(Exception):
            part.stream.close()
        # On an object store pyarrow cannot abandon an upload, so the closed object is removed.
        _delete_quietly(self._fs, part.temp_path)


def _to_batch(dataset: Dataset, rows: list[tuple[Any, ...]]) -> pa.RecordBatch:
    """Transpose once and build each column with the exact schema type, naming any bad cell."""
    schema = SCHEMAS[dataset]
    columns = list(zip(*rows, strict=True))
    arrays = []
    for schema_field, values in zip(schema, columns, strict=True):
        try:
            if schema_field.type == TIMESTAMP:
                array = pa.array(_epoch_micros(values), type=TIMESTAMP)
            else:
                array = pa.array(values, type=schema_field.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
            index, problem = _find_bad_cell(values, schema_field.type)
            raise BadRowError(dataset, schema_field.name, index, problem) from None
        if not schema_field.nullable and array.null_count:
            index = array.is_null().index(True).as_py()
            raise BadRowError(dataset, schema_field.name, index, "is null in a non-null column")
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _epoch_micros(values: tuple[Any, ...]) -> list[int | None]:
    """Aware datetimes as microseconds since the epoch, converting each run of the same object
    once: rows repeat their media's timestamp and their block's fetched_at, and pyarrow's own
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


def _find_bad_cell(values: tuple[Any, ...], arrow_type: pa.DataType) -> tuple[int, str]:
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


def _delete_quietly(filesystem: pafs.FileSystem, path: str) -> None:
    with contextlib.suppress(OSError):
        filesystem.delete_file(path)
