"""The lake's filesystem: local disk or S3 through pyarrow.fs, and small JSON objects in it.

Everything that touches the lake (sink, checkpoint, sweeps, compaction) goes through one
`Lake`, so state objects live with the data and work on S3 exactly as on disk. Two commit rules
cover both: on disk an object is written under a hidden temporary name, fsynced and renamed over
its final name; on an object store there is no rename, but an object becomes visible only when
its upload completes and a PUT replaces an existing key whole, so the final key is written
directly. Either way a reader sees the old object or the new one, never half of one.
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

from harvester.lake import layout

__all__ = ["OBJECT_STORES", "Lake", "base_type", "fsync", "open_lake"]

# Filesystems where a rename is not atomic but an upload becomes visible only once complete.
OBJECT_STORES = frozenset({"s3", "gcs", "abfs"})


def open_lake(path: str, *, s3_endpoint: str | None = None) -> Lake:
    """The lake at `path`: a local folder or `s3://bucket/prefix`.

    S3 credentials and region come from the usual AWS variables and files; the endpoint from
    `s3_endpoint` (`[output] s3_endpoint`), else from `AWS_ENDPOINT_URL`, which pyarrow honours.
    """
    if path.startswith("s3://") and s3_endpoint:
        scheme, _, host = s3_endpoint.rpartition("://")
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        fs = pafs.S3FileSystem(
            endpoint_override=host.rstrip("/"), scheme=scheme or "https", region=region
        )
        return Lake(fs, path.removeprefix("s3://").rstrip("/"))
    if "://" in path:
        fs, root = pafs.FileSystem.from_uri(path)
        return Lake(fs, root.rstrip("/"))
    return Lake(pafs.LocalFileSystem(), os.path.abspath(path).rstrip("/"))


@dataclass(frozen=True)
class Lake:
    """A pyarrow filesystem and the lake's root on it; paths given to methods are relative."""

    fs: pafs.FileSystem
    root: str

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

    # ---- small objects (state, reports) ------------------------------------------------------

    def put(self, relative: str, data: bytes) -> None:
        """Write a whole object atomically, replacing any object of that name."""
        final = self.full(relative)
        if self.object_store:
            with self.fs.open_output_stream(final) as out:
                out.write(data)
            return
        folder = final.rsplit("/", 1)[0]
        self.fs.create_dir(folder, recursive=True)
        temp = layout.temp_path(final, uuid.uuid4().hex)
        try:
            with self.fs.open_output_stream(temp) as out:
                out.write(data)
            self.publish(temp, final)
        except BaseException:
            self.delete(temp)
            raise

    def put_json(self, relative: str, value: Any) -> None:
        self.put(relative, orjson.dumps(value, option=orjson.OPT_SORT_KEYS))

    def get_json(self, relative: str) -> Any:
        """The object's JSON, or None when it does not exist."""
        try:
            with self.fs.open_input_stream(self.full(relative)) as stream:
                return orjson.loads(stream.read())
        except FileNotFoundError:
            return None

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
        """One file as stored (no hive partition column added)."""
        with self.fs.open_input_file(self.full(relative)) as stream:
            return pq.read_table(stream, columns=columns)

    def write_parquet(self, relative: str, table: pa.Table, *, row_group_rows: int) -> None:
        """Write a whole Parquet file atomically, replacing any file of that name: a reader that
        lists the folder sees the old content or the new, never both and never neither."""
        final = self.full(relative)
        temp = final if self.object_store else layout.temp_path(final, uuid.uuid4().hex)
        if not self.object_store:
            self.fs.create_dir(final.rsplit("/", 1)[0], recursive=True)
        try:
            with self.fs.open_output_stream(temp) as out:
                pq.write_table(table, out, row_group_size=row_group_rows, compression="zstd")
            if temp != final:
                self.publish(temp, final)
        except BaseException:
            if temp != final:
                self.delete(temp)
            raise

    def publish(self, temp: str, final: str) -> None:
        """Rename a finished temporary file over its final name (local and renaming filesystems)."""
        if self.local:
            # Without fsync a crash after the rename can leave a committed name with no data.
            fsync(temp)
            os.replace(temp, final)
            fsync(os.path.dirname(final))
        else:
            self.fs.move(temp, final)


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
