"""The lake's filesystem: local disk or S3 through pyarrow.fs, and the one atomic publish.

Everything that touches the lake (sink, checkpoint, sweeps, settling, compaction) goes through
one `Lake`, so state objects live with the data and work on S3 exactly as on disk, and every file
the lake gets (a part, a rewritten or merged file, a state object) is published by `Lake.commit`.
Two commit rules cover both: on disk a file is written under a hidden temporary name, fsynced and
renamed over its final name; on an object store there is no rename, but an object becomes visible
only when its upload completes and a PUT replaces an existing key whole, so the final key is
written directly. Either way a reader sees the old object or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from harvester.config import OutputSettings
from harvester.lake import layout
from harvester.models import Dataset

__all__ = [
    "DEFAULT_COMPRESSION",
    "OBJECT_STORES",
    "DamagedFile",
    "Lake",
    "NewFile",
    "base_type",
    "fsync",
    "open_lake",
    "open_output",
]

# Filesystems where a rename is not atomic but an upload becomes visible only once complete.
OBJECT_STORES = frozenset({"s3", "gcs", "abfs"})
# The Parquet codec when no config names one (`[output] compression`'s default).
DEFAULT_COMPRESSION: str = OutputSettings.compression


class DamagedFile(ValueError):
    """A lake file that exists but cannot be read: `path` (relative to the lake) and `why`.

    Every failure to read a lake file (a part, a state object, the cursor, a report, a plan) is
    raised as this one error, so the message names the file and `lake.doctor` can heal it.
    """

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path = path
        self.why = why


def open_output(output: OutputSettings) -> Lake:
    """The lake a config's `[output]` describes: its path, S3 endpoint and Parquet codec."""
    return open_lake(output.path, s3_endpoint=output.s3_endpoint, compression=output.compression)


def open_lake(
    path: str, *, s3_endpoint: str | None = None, compression: str = DEFAULT_COMPRESSION
) -> Lake:
    """The lake at `path`: a local folder or `s3://bucket/prefix`; its Parquet files are written
    with `compression`.

    S3 credentials and region come from the usual AWS variables and files; the endpoint from
    `s3_endpoint` (`[output] s3_endpoint`), else from `AWS_ENDPOINT_URL`, which pyarrow honours.
    """
    if path.startswith("s3://") and s3_endpoint:
        scheme, _, host = s3_endpoint.rpartition("://")
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        fs = pafs.S3FileSystem(
            endpoint_override=host.rstrip("/"), scheme=scheme or "https", region=region
        )
        return Lake(fs, path.removeprefix("s3://").rstrip("/"), compression)
    if "://" in path:
        fs, root = pafs.FileSystem.from_uri(path)
        return Lake(fs, root.rstrip("/"), compression)
    return Lake(pafs.LocalFileSystem(), os.path.abspath(path).rstrip("/"), compression)


@dataclass(frozen=True)
class Lake:
    """A pyarrow filesystem and the lake's root on it; paths given to methods are relative.

    `compression` is the codec of every Parquet file the lake gets: parts (`ParquetSink`), files
    rewritten when settling (`lake.settle`) and merged ones (`lake.compact`).
    """

    fs: pafs.FileSystem
    root: str
    compression: str = DEFAULT_COMPRESSION

    @property
    def object_store(self) -> bool:
        return base_type(self.fs) in OBJECT_STORES

    @property
    def local(self) -> bool:
        return base_type(self.fs) == "local" and not isinstance(self.fs, pafs.SubTreeFileSystem)

    def full(self, relative: str) -> str:
        parts = relative.replace("\\", "/").split("/")
        if relative.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"relative_path must be a plain relative path, got {relative!r}")
        return "/".join([self.root, *parts])

    def relative(self, full: str) -> str:
        return full[len(self.root) + 1 :]

    # ---- the one atomic publish -----------------------------------------------------------

    def create(self, relative: str, *, fresh: bool = False) -> NewFile:
        """Open a file for writing: `commit` publishes it whole under `relative`, `discard` drops
        it.

        On disk it is written under a hidden temporary name beside its final one; on an object
        store under its final key (the object appears only when its upload completes). `fresh`: the
        name is new (a part file), so its temporary name derives from it alone (`layout.temp_path`:
        a crash's leftover is found by name) and a failed write to an object store is deleted;
        otherwise the file may replace an existing one: the temporary name is unique, and on an
        object store nothing is deleted (the key may still hold the object being replaced).
        """
        final = self.full(relative)
        if self.object_store:
            temp = final
        else:
            temp = layout.temp_path(final, None if fresh else uuid.uuid4().hex)
            self.fs.create_dir(final.rsplit("/", 1)[0], recursive=True)
        return NewFile(self.fs.open_output_stream(temp), relative, temp, final, fresh)

    def commit(self, new: NewFile) -> None:
        """Close a file from `create` and publish it: a reader sees all of it, or (on failure,
        after which it is discarded and the error raised) none of it."""
        try:
            new.stream.close()
            if new.temp != new.final:
                self._rename(new.temp, new.final)
        except BaseException:
            self.discard(new)
            raise

    def discard(self, new: NewFile) -> None:
        """Drop a file from `create` that is not to be published. Best effort: it runs while
        another error propagates and must not replace it."""
        with contextlib.suppress(Exception):
            new.stream.close()
        # On an object store pyarrow cannot abandon an upload, so a fresh one is removed closed.
        if new.temp != new.final or new.fresh:
            self.delete(new.temp)

    @contextlib.contextmanager
    def writing(self, relative: str) -> Iterator[Any]:
        """`create`, yield its stream, `commit` (or `discard` when the block raises)."""
        new = self.create(relative)
        try:
            yield new.stream
        except BaseException:
            self.discard(new)
            raise
        self.commit(new)

    # ---- small objects (state, reports) ------------------------------------------------------

    def put(self, relative: str, data: bytes) -> None:
        """Write a whole object atomically, replacing any object of that name."""
        with self.writing(relative) as out:
            out.write(data)

    def put_json(self, relative: str, value: Any) -> None:
        self.put(relative, orjson.dumps(value, option=orjson.OPT_SORT_KEYS))

    def get_json(self, relative: str) -> Any:
        """The object's JSON, or None when it does not exist; `DamagedFile` when it is no JSON."""
        try:
            with self.fs.open_input_stream(self.full(relative)) as stream:
                data = stream.read()
        except FileNotFoundError:
            return None
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as error:
            if not data.strip():
                raise DamagedFile(relative, "empty file, not JSON") from None
            if error.pos >= len(data.rstrip()):
                raise DamagedFile(relative, f"truncated JSON at byte {len(data)}") from None
            raise DamagedFile(relative, f"not JSON ({error.msg} at byte {error.pos})") from None

    def get_object(self, relative: str, *fields: str) -> dict[str, Any] | None:
        """`get_json` of an object that must be a JSON object holding `fields` (else damaged)."""
        value = self.get_json(relative)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise DamagedFile(relative, f"a JSON {type(value).__name__}, not an object")
        missing = [f for f in fields if f not in value]
        if missing:
            raise DamagedFile(relative, f"JSON without {', '.join(missing)}")
        return value

    def is_lake(self) -> bool:
        """Whether the root holds a lake (a run's report, state or a dataset folder): commands that
        only read or rewrite a lake refuse any other path instead of finding nothing to do."""
        names = {layout.RUNS, layout.STATE, *(layout.dataset_folder(d) for d in Dataset)}
        try:
            entries = self.fs.get_file_info(pafs.FileSelector(self.root, allow_not_found=True))
        except OSError:
            return False
        return any(info.base_name in names for info in entries)

    def exists(self, relative: str) -> bool:
        info = self.fs.get_file_info(self.full(relative))
        return bool(info.type == pafs.FileType.File)

    def listdir(self, relative: str) -> list[pafs.FileInfo]:
        """Entries directly under a folder (none when it does not exist), sorted by name."""
        selector = pafs.FileSelector(self.full(relative), allow_not_found=True, recursive=False)
        return sorted(self.fs.get_file_info(selector), key=lambda info: info.path)

    def files(self, relative: str) -> Iterator[pafs.FileInfo]:
        """Every file below a folder, recursively."""
        selector = pafs.FileSelector(self.full(relative), allow_not_found=True, recursive=True)
        for info in self.fs.get_file_info(selector):
            if info.type == pafs.FileType.File:
                yield info

    def delete(self, full: str) -> None:
        with contextlib.suppress(FileNotFoundError, OSError):
            self.fs.delete_file(full)

    def read_parquet(self, relative: str, columns: list[str] | None = None) -> pa.Table:
        """One file as stored (no hive partition column added); `DamagedFile` when unreadable."""
        with self.fs.open_input_file(self.full(relative)) as stream:
            try:
                return pq.read_table(stream, columns=columns)
            except (pa.ArrowException, OSError) as error:
                if isinstance(error, FileNotFoundError):
                    raise
                raise DamagedFile(relative, _parquet_why(stream, error)) from None

    def parquet_problem(self, relative: str, columns: tuple[str, ...]) -> str | None:
        """What is wrong with a Parquet file, judged from its footer (cheap: no data is read):
        not Parquet, truncated, or lacking one of `columns`; None when it looks whole."""
        try:
            with self.fs.open_input_file(self.full(relative)) as stream:
                try:
                    names = set(pq.ParquetFile(stream).schema_arrow.names)
                except (pa.ArrowException, OSError) as error:
                    return _parquet_why(stream, error)
        except FileNotFoundError:
            return None
        missing = [c for c in columns if c not in names]
        return f"schema lacks column {', '.join(missing)}" if missing else None

    def move(self, relative: str, to: str) -> None:
        """Move a file within the lake (a rename on disk; a copy and a delete on S3)."""
        target = self.full(to)
        if not self.object_store:
            self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        self.fs.move(self.full(relative), target)

    def write_parquet(self, relative: str, table: pa.Table, *, row_group_rows: int) -> None:
        """Write a whole Parquet file atomically, replacing any file of that name: a reader that
        lists the folder sees the old content or the new, never both and never neither."""
        with self.writing(relative) as out:
            pq.write_table(table, out, row_group_size=row_group_rows, compression=self.compression)

    def _rename(self, temp: str, final: str) -> None:
        """Rename a finished temporary file over its final name (local and renaming filesystems)."""
        if self.local:
            # Without fsync a crash after the rename can leave a committed name with no data.
            fsync(temp)
            os.replace(temp, final)
            fsync(os.path.dirname(final))
        else:
            self.fs.move(temp, final)


@dataclass(frozen=True)
class NewFile:
    """A file being written (`Lake.create`): its stream, its path relative to the lake, the full
    path written to (a hidden temporary name on disk, the final key on an object store) and the
    full final path."""

    stream: Any  # pyarrow NativeFile
    path: str
    temp: str
    final: str
    fresh: bool


_MAGIC = b"PAR1"


def _parquet_why(stream: Any, error: BaseException) -> str:
    """Why a Parquet file did not open, in the words a user can act on."""
    try:
        size = stream.size()
        stream.seek(0)
        head = stream.read(4)
        stream.seek(max(size - 4, 0))
        tail = stream.read(4)
    except (pa.ArrowException, OSError):
        return f"unreadable Parquet file ({error})"
    if head != _MAGIC:
        return f"not a Parquet file ({size} bytes)"
    if tail != _MAGIC:
        return f"truncated Parquet file ({size} bytes, no footer)"
    return f"damaged Parquet file ({error})"


def base_type(filesystem: pafs.FileSystem) -> str:
    """The filesystem under any SubTreeFileSystem wrappers: "local", "s3", ..."""
    while isinstance(filesystem, pafs.SubTreeFileSystem):
        filesystem = filesystem.base_fs
    return str(filesystem.type_name)


def fsync(path: str) -> None:
    """Flush a file or a folder to disk (a rename is durable only once its folder is)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
