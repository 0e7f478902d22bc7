"""Progress that advances only after the sink commits: jobs, epochs and resume after any crash.

A *job* is one harvest as decided by its output: mode, accounts, API version, window, what is
harvested, and for sweeps the snapshot date (`JobSpec`). A *run* is one process working on a job;
a job killed at any moment is finished by the next run with the same config. Work comes in
*units* whose rows travel to the sink in one message, so no commit ever splits one: a media
family (its `media` rows, its insights, its error rows), a piece of an account's account insights
(one request window, `harvest.account_insights.Piece`), an account (its listing errors and what
completed, sent after all its media and pieces), the discovery report, a competitor (its
profile and media, or its error row: `harvest.competitors`). Units other than media
and accounts are named in a manifest's `other` list, an incomplete one (a request of it failed,
its rows are committed all the same) with the `INCOMPLETE` suffix (`JobState.outcome`).

State lives with the lake, written through the same filesystem (so on S3 too), under
`_state/` (`lake.layout` names every object): an index of open jobs, and per job its begin
object, a registration per run (written before the run opens any part), an epoch manifest per
commit (committed files + the units they complete), and a done object once the job finished
(then it is settled: `lake.settle`).

Commit protocol: the sink closes (renames, or completes the upload of) every part of an epoch,
then the epoch's manifest is written, listing those files and the units whose rows are all in
them. A unit is done iff a manifest names it. A run that starts on an unfinished job loads its
manifests, deletes the job's part files that no manifest lists (written after the last manifest,
orphans of the crash), and skips done units. A SIGKILL anywhere therefore loses at most the work
since the last manifest and never duplicates a row.

Memory: a run keeps no per-media record of its own commits (the listing offers each media once
per run), only the media its job's earlier runs committed, as a compact `IdSet`; the pending
epoch's media ids wait at 8 bytes each. Settling reads a job's media from its manifests again
(`done_media`), so nothing here grows with the number of media a run harvests.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from hashlib import sha256
from itertools import islice
from typing import Any, Literal

import anyio
import orjson
from anyio.streams.memory import MemoryObjectReceiveStream

from harvester.lake import layout
from harvester.lake.fs import DamagedFile, Lake
from harvester.lake.idset import IdSet, IdSetBuilder
from harvester.lake.sink import ParquetSink, SinkStatistics
from harvester.models import Dataset, Rows

__all__ = [
    "COMPETITOR_UNIT",
    "Checkpoint",
    "JobSpec",
    "JobState",
    "SinkTask",
    "Unit",
    "close_job",
    "done_media",
    "open_jobs",
    "read_begin",
    "read_manifest",
    "start_job",
]

log = logging.getLogger("harvester")

# The sink task hands rows to its writer thread in chunks of about this many rows (one thread hop
# per chunk instead of per media).
SINK_CHUNK_ROWS = 16_384
# A manifest's media ids are encoded this many at a time (`encode_manifest`): an epoch can name
# close to a million media, and a list of them all as Python strings would cost ~70 MB at once.
MANIFEST_CHUNK_IDS = 16_384
SORTED = orjson.OPT_SORT_KEYS
# Appended to the id of a unit that is done but incomplete (`Unit.info["complete"]` false).
INCOMPLETE = "#incomplete"
# A competitor's unit id is this and its username (settling replaces its older error rows).
COMPETITOR_UNIT = "competitor/"
Mode = Literal["backfill", "sweep"]


@dataclass(frozen=True)
class JobSpec:
    """What decides a job's output; equal specs are the same job (a rerun resumes it)."""

    mode: Mode
    accounts: tuple[str, ...]
    api_version: str
    since: str | None
    until: str | None
    harvest: tuple[tuple[str, Any], ...]
    # Sweeps belong to their day; a backfill resumed after midnight keeps its first date.
    snapshot_date: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "accounts": sorted(self.accounts),
            "api_version": self.api_version,
            "since": self.since,
            "until": self.until,
            "harvest": dict(self.harvest),
            "snapshot_date": self.snapshot_date,
        }

    @property
    def key(self) -> str:
        digest = sha256(orjson.dumps(self.as_dict(), option=orjson.OPT_SORT_KEYS)).hexdigest()
        return f"{self.mode}-{digest[:16]}"


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit of work and all its rows, sent to the sink as one message so no epoch splits it."""

    kind: Literal["media", "account", "piece", "discovery", "competitor"]
    # Media harvested in one Graph batch complete together, so one unit may name several.
    ids: tuple[str, ...]
    blocks: list[Rows]
    info: dict[str, bool] = field(default_factory=dict)


@dataclass
class JobState:
    """A job as its manifests tell it: what is done and which files hold it.

    `media` holds the media done by the job's earlier runs only, and only in the state a run
    resumes (`start_job`): this run's commits are not added (they would grow with every media
    harvested, while the listing never offers a media twice in one run). Everything else is
    kept up to date by `absorb` and is small: per file, per account, per dataset.
    """

    key: str
    job_id: str
    mode: str
    snapshot_date: date
    clock: datetime
    windows: dict[str, Any]
    runs: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # path -> dataset
    media: IdSet = field(default_factory=IdSet)
    accounts: dict[str, dict[str, bool]] = field(default_factory=dict)
    other: set[str] = field(default_factory=set)
    rows: dict[str, int] = field(default_factory=lambda: {d.value: 0 for d in Dataset})
    resumed: bool = False

    @property
    def folder(self) -> str:
        return layout.job_folder(self.key, self.job_id)

    def absorb(self, manifest: dict[str, Any]) -> None:
        """Count a manifest's files, rows, accounts and other units (its media: see `media`)."""
        for path, dataset, rows in manifest["files"]:
            self.files[path] = dataset
            self.rows[dataset] = self.rows.get(dataset, 0) + rows
        self.accounts.update(manifest["accounts"])
        self.other.update(manifest["other"])

    def outcome(self, unit_id: str) -> bool | None:
        """None when no manifest names the unit, else whether it completed."""
        if unit_id in self.other:
            return True
        return False if unit_id + INCOMPLETE in self.other else None


@dataclass(frozen=True)
class OpenJob:
    key: str
    job_id: str
    mode: str

    @property
    def folder(self) -> str:
        return layout.job_folder(self.key, self.job_id)

    @property
    def entry(self) -> str:
        return layout.open_entry(self.key, self.job_id)


def open_jobs(lake: Lake) -> list[OpenJob]:
    """Jobs started and not yet settled, oldest first."""
    found = []
    for info in lake.listdir(layout.OPEN_JOBS):
        if info.base_name.startswith("."):
            continue  # an entry a crash left half written under its temporary name
        entry = lake.get_object(lake.relative(info.path), "key", "job_id", "mode")
        if entry is not None:
            found.append(OpenJob(entry["key"], entry["job_id"], entry["mode"]))
    return sorted(found, key=lambda job: job.job_id)


def load_job(lake: Lake, job: OpenJob, *, media: bool = False) -> JobState:
    """The job's state from its begin object and manifests; its done media only when `media`
    (a resume needs them, settling and compaction do not)."""
    begin = read_begin(lake, job.folder)
    state = JobState(
        key=job.key,
        job_id=job.job_id,
        mode=begin["spec"]["mode"],
        snapshot_date=date.fromisoformat(begin["snapshot_date"]),
        clock=datetime.fromisoformat(begin["clock"]),
        windows=begin["windows"],
    )
    done = IdSetBuilder() if media else None
    for info in lake.listdir(job.folder):
        name = info.base_name
        if (run := layout.registered_run(name)) is not None:
            state.runs.append(run)
        elif layout.is_epoch(name):
            # One manifest parsed at a time: its ids go straight into the compact builder.
            manifest = read_manifest(lake, lake.relative(info.path))
            state.absorb(manifest)
            if done is not None:
                done.extend(manifest["media"])
    if done is not None:
        state.media = done.build()
    return state


def _manifests(lake: Lake, folder: str) -> Iterator[dict[str, Any]]:
    for info in lake.listdir(folder):
        if layout.is_epoch(info.base_name):
            yield read_manifest(lake, lake.relative(info.path))


MANIFEST_FIELDS = ("files", "accounts", "other", "media")
BEGIN_FIELDS = ("spec", "snapshot_date", "clock", "windows")


def read_manifest(lake: Lake, path: str) -> dict[str, Any]:
    """An epoch manifest; `DamagedFile` (naming it) when it is unreadable or incomplete."""
    manifest = lake.get_object(path, *MANIFEST_FIELDS)
    if manifest is None:
        raise DamagedFile(path, "listed but gone")
    return manifest


def read_begin(lake: Lake, folder: str) -> dict[str, Any]:
    """A job's begin object; `DamagedFile` (naming it) when it is missing, unreadable or
    incomplete: without it the job cannot resume."""
    path = layout.job_begin(folder)
    begin = lake.get_object(path, *BEGIN_FIELDS)
    if begin is None:
        raise DamagedFile(path, "missing: the job has no begin object")
    return begin


def done_media(lake: Lake, state: JobState) -> IdSet:
    """Every media the job's manifests name (all its runs), read from the lake when asked."""
    done = IdSetBuilder()
    for manifest in _manifests(lake, state.folder):
        done.extend(manifest["media"])
    return done.build()


def is_done(lake: Lake, job: OpenJob) -> bool:
    return lake.exists(layout.job_done(job.folder))


def start_job(
    lake: Lake,
    spec: JobSpec,
    run_id: str,
    *,
    clock: datetime,
    snapshot_date: date,
    windows: Callable[[], dict[str, Any]],
    isolated: bool = False,
) -> JobState:
    """Resume the unfinished job of this spec, or begin a new one; register this run.

    Call after settling finished jobs (`lake.settle.settle`). Other unfinished jobs lose
    their orphan parts (safe: one harvester per lake at a time) and stay resumable, except older
    sweeps, which a new sweep abandons: the cursor never moved for them, so nothing is lost.
    `isolated` (a shard of a run, beside other shards): other jobs are left alone entirely.
    """
    state: JobState | None = None
    for job in open_jobs(lake):
        if isolated and job.key != spec.key:
            continue
        # A shard's worker may die after marking its job done and before reporting back: Ray's
        # retry must find that job (its units are all committed) rather than begin a second one.
        if is_done(lake, job) and not (isolated and job.key == spec.key):
            continue
        other = load_job(lake, job, media=job.key == spec.key)
        delete_orphans(lake, other)
        if job.key == spec.key:
            state = other
            state.resumed = True
        elif spec.mode == "sweep" and job.mode == "sweep":
            log.warning("abandoning unfinished sweep %s (its committed files stay)", job.job_id)
            lake.put_json(layout.job_abandoned(job.folder), {"by": run_id})
            lake.delete(lake.full(job.entry))
        else:
            log.warning("an unfinished %s job %s waits for its config to run again", job.mode, job)
    if state is None:
        job_id = f"{clock.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"
        state = JobState(
            key=spec.key,
            job_id=job_id,
            mode=spec.mode,
            snapshot_date=snapshot_date,
            clock=clock,
            windows=windows(),
        )
        begin = {
            "spec": spec.as_dict(),
            "snapshot_date": snapshot_date.isoformat(),
            "clock": clock.isoformat(),
            "windows": state.windows,
        }
        lake.put_json(layout.job_begin(state.folder), begin)
        entry = OpenJob(state.key, job_id, spec.mode)
        lake.put_json(entry.entry, {"key": state.key, "job_id": job_id, "mode": spec.mode})
    # Registered before any part is opened, so a crash's orphans can always be found by name.
    lake.put_json(layout.job_run(state.folder, run_id), {"started_at": datetime.now(UTC)})
    state.runs.append(run_id)
    return state


def delete_orphans(lake: Lake, state: JobState) -> list[str]:
    """Delete part files of the job's runs that no manifest lists (the crash's uncommitted tail)."""
    prefixes = tuple(p for run in state.runs for p in layout.part_prefixes(run))
    deleted = []
    for dataset in Dataset:
        for info in lake.listdir(layout.partition(dataset, state.snapshot_date)):
            relative = lake.relative(info.path)
            if info.base_name.startswith(prefixes) and relative not in state.files:
                lake.delete(info.path)
                deleted.append(relative)
    if deleted:
        log.info("removed %d uncommitted part files of job %s", len(deleted), state.job_id)
    return deleted


def close_job(lake: Lake, key: str, job_id: str) -> None:
    """The job is settled: drop it from the open index (its folder stays as history)."""
    lake.delete(lake.full(layout.open_entry(key, job_id)))


class Checkpoint:
    """Records units as the sink takes their rows, and writes a manifest after each epoch.

    Used by the single sink task only (from its worker thread), so it needs no lock.
    """

    def __init__(
        self,
        lake: Lake,
        state: JobState,
        run_id: str,
        *,
        every_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
        guard: Callable[[], None] = lambda: None,
    ) -> None:
        self._lake = lake
        self._guard = guard  # raises when the run may no longer commit (`lake.lock` lost)
        self.state = state
        self._run_id = run_id
        self._every = every_seconds
        self._monotonic = monotonic
        self._last = monotonic()
        self._epoch = 0
        # What the next manifest names, not the units' rows (the sink has them). An epoch can
        # span a whole part file, hundreds of thousands of media: their ids wait at 8 bytes each.
        self._media = IdSetBuilder()
        self._accounts: dict[str, dict[str, bool]] = {}
        self._other: list[str] = []

    def write(self, sink: ParquetSink, units: Iterable[Unit]) -> None:
        """Hand units to the sink; each counts as pending only once all its rows are written."""
        for unit in units:
            for block in unit.blocks:
                sink.write(block)
            if unit.kind == "media":
                self._media.extend(unit.ids)
            elif unit.kind == "account":
                self._accounts.update(dict.fromkeys(unit.ids, unit.info))
            elif unit.info.get("complete", True):
                self._other.extend(unit.ids)
            else:
                self._other.extend(unit_id + INCOMPLETE for unit_id in unit.ids)

    def due(self, sink: ParquetSink) -> bool:
        return sink.rotated or self.seconds_until_due() <= 0

    def seconds_until_due(self) -> float:
        """Time left before the epoch is due on time (<= 0: due now)."""
        return self._every - (self._monotonic() - self._last)

    def commit(self, sink: ParquetSink) -> None:
        """Commit the sink's epoch, then write the manifest naming its files and units."""
        try:
            self._guard()
        except BaseException:
            sink.abort()  # a refused epoch's open parts are dropped, never published
            raise
        files = sink.commit_epoch()
        # Named as added: a run lists each media once, and a set would cost a sort per epoch.
        media, self._media = self._media, IdSetBuilder()
        accounts, self._accounts = self._accounts, {}
        other, self._other = self._other, []
        self._last = self._monotonic()
        if not files and not media and not accounts and not other:
            return
        manifest = {
            "run_id": self._run_id,
            "files": [(f.path, f.dataset, f.rows) for f in files],
            "accounts": accounts,
            "other": other,
        }
        name = layout.job_epoch(self.state.folder, self._run_id, self._epoch)
        self._lake.put(name, encode_manifest(manifest, media))
        self._epoch += 1
        self.state.absorb(manifest)

    def finish(self) -> None:
        self._guard()
        self._lake.put_json(
            layout.job_done(self.state.folder),
            {"finished_at": datetime.now(UTC), "rows": self.state.rows},
        )


def encode_manifest(manifest: dict[str, Any], media: Iterable[str]) -> bytes:
    """The JSON of `manifest` plus a "media" list, byte for byte what `Lake.put_json` writes (keys
    sorted), but with the ids encoded a chunk at a time instead of all held as strings at once."""
    if "media" in manifest:
        raise ValueError("the media ids are passed apart from the manifest")
    head = orjson.dumps({k: v for k, v in manifest.items() if k < "media"}, option=SORTED)
    tail = orjson.dumps({k: v for k, v in manifest.items() if k > "media"}, option=SORTED)
    out = bytearray(head[:-1])  # open: '{...' without its '}'
    out += b',"media":[' if len(head) > 2 else b'"media":['
    ids = iter(media)
    separator = b""
    while chunk := list(islice(ids, MANIFEST_CHUNK_IDS)):
        out += separator + orjson.dumps(chunk)[1:-1]
        separator = b","
    out += b"]," + tail[1:] if len(tail) > 2 else b"]}"
    return bytes(out)


class SinkTask:
    """The run's single sink task: gathers units into chunks, writes each chunk in a worker
    thread, and commits an epoch (files, then their manifest) whenever the checkpoint is due.

    It waits for the next unit only until the epoch is due, so an epoch closes on time even when
    no unit arrives (a long account-insights phase, a throttled account): what it holds is
    written and committed then. One task and one worker thread at a time, so writes and commits
    never interleave.
    """

    def __init__(self, sink: ParquetSink, checkpoint: Checkpoint) -> None:
        self._sink = sink
        self._checkpoint = checkpoint
        self._failed = False
        # Whether units were handed to the sink since its last commit (the run may have written
        # one before this task started): only then is there an epoch to close on time.
        self._pending = True

    async def run(self, units: MemoryObjectReceiveStream[Unit]) -> None:
        chunk: list[Unit] = []
        size = 0
        try:
            while True:
                unit = await self._next(units, timed=bool(chunk) or self._pending)
                if unit is not None:
                    chunk.append(unit)
                    size += sum(len(block.rows) for block in unit.blocks)
                # None: the epoch is due and nothing came; commit what is held (maybe nothing).
                if unit is None or size >= SINK_CHUNK_ROWS or self._checkpoint.due(self._sink):
                    await anyio.to_thread.run_sync(self._write, chunk)
                    chunk, size = [], 0
        except anyio.EndOfStream:
            pass
        finally:
            # Also when cancelled (Ctrl-C): units already finished and sent, held here or still
            # in the stream's buffer, are handed to the sink, so `close()` commits them too.
            with anyio.CancelScope(shield=True):
                while True:
                    try:
                        chunk.append(units.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                        break
                units.close()
                if chunk and not self._failed:
                    await anyio.to_thread.run_sync(self._write, chunk)

    async def _next(self, units: MemoryObjectReceiveStream[Unit], *, timed: bool) -> Unit | None:
        """The next unit, or None once the epoch is due with none arrived (only when `timed`:
        something waits for a commit); EndOfStream at the end.

        A unit already waiting is taken without a timeout, so a due epoch (or a zero
        `checkpoint_seconds`) never starves the stream. It yields to the event loop first, as
        `receive()` does: a sink that drained the stream without yielding would never let the
        insights workers' sends block, so media would not gather into full Graph batches (3x
        the requests, measured on the demo)."""
        await anyio.lowlevel.checkpoint()
        try:
            return units.receive_nowait()
        except anyio.WouldBlock:
            if not timed:
                return await units.receive()
        with anyio.move_on_after(max(self._checkpoint.seconds_until_due(), 0.0)):
            return await units.receive()
        return None

    def _write(self, chunk: list[Unit]) -> None:
        try:
            self._checkpoint.write(self._sink, chunk)
            self._pending |= bool(chunk)
            if self._checkpoint.due(self._sink):
                self._checkpoint.commit(self._sink)
                self._pending = False
        except Exception:
            self._failed = True
            raise

    def close(self) -> SinkStatistics:
        """Commit the last epoch; after a sink failure, abort instead (a unit may be half in)."""
        if self._failed:
            self._sink.abort()
            return self._sink.statistics()
        self._checkpoint.commit(self._sink)
        return self._sink.close()
