"""Progress that advances only after the sink commits: jobs, epochs and resume after any crash.

A *job* is one harvest as decided by its output: mode, accounts, API version, window, what is
harvested, and for sweeps the snapshot date (`JobSpec`). A *run* is one process working on a job;
a job killed at any moment is finished by the next run with the same config. Work comes in
*units* whose rows travel to the sink in one message, so no commit ever splits one: a media
family (its `media` rows, its insights, its error rows), an account (its account insights and
listing errors, sent after all its media), the discovery report.

State lives with the lake, written through the same filesystem (so on S3 too):

    _state/open/<key>.<job>.json                 index of jobs not yet settled
    _state/jobs/<key>/<job>/begin.json           the spec, clock, snapshot date, sweep windows
    _state/jobs/<key>/<job>/run-<run>.json       a run registers before it writes any part
    _state/jobs/<key>/<job>/epoch-<run>-<n>.json manifest: committed files + units they complete
    _state/jobs/<key>/<job>/done.json            the job finished (then it is settled: supersede)

Commit protocol: the sink closes (renames, or completes the upload of) every part of an epoch,
then the epoch's manifest is written, listing those files and the units whose rows are all in
them. A unit is done iff a manifest names it. A run that starts on an unfinished job loads its
manifests, deletes the job's part files that no manifest lists (written after the last manifest,
orphans of the crash), and skips done units. A SIGKILL anywhere therefore loses at most the work
since the last manifest and never duplicates a row.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from hashlib import sha256
from typing import Any, Literal

import anyio
import orjson
from anyio.streams.memory import MemoryObjectReceiveStream

from harvester.lake import Lake
from harvester.models import Rows
from harvester.schema import Dataset
from harvester.sink import ParquetSink, SinkStatistics

__all__ = [
    "Checkpoint",
    "JobSpec",
    "JobState",
    "SinkTask",
    "Unit",
    "close_job",
    "open_jobs",
    "start_job",
]

log = logging.getLogger("harvester")

STATE = "_state"
# The sink task hands rows to its writer thread in chunks of about this many rows (one thread hop
# per chunk instead of per media).
SINK_CHUNK_ROWS = 16_384
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

    kind: Literal["media", "account", "discovery"]
    # Media harvested in one Graph batch complete together, so one unit may name several.
    ids: tuple[str, ...]
    blocks: list[Rows]
    info: dict[str, bool] = field(default_factory=dict)


@dataclass
class JobState:
    """A job as its manifests tell it: what is done and which files hold it."""

    key: str
    job_id: str
    mode: str
    snapshot_date: date
    clock: datetime
    windows: dict[str, Any]
    runs: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # path -> dataset
    media: set[str] = field(default_factory=set)
    accounts: dict[str, dict[str, bool]] = field(default_factory=dict)
    other: set[str] = field(default_factory=set)
    rows: dict[str, int] = field(default_factory=lambda: {d.value: 0 for d in Dataset})
    resumed: bool = False

    @property
    def folder(self) -> str:
        return f"{STATE}/jobs/{self.key}/{self.job_id}"

    def absorb(self, manifest: dict[str, Any]) -> None:
        for path, dataset, rows in manifest["files"]:
            self.files[path] = dataset
            self.rows[dataset] = self.rows.get(dataset, 0) + rows
        self.media.update(manifest["media"])
        self.accounts.update(manifest["accounts"])
        self.other.update(manifest["other"])


@dataclass(frozen=True)
class OpenJob:
    key: str
    job_id: str
    mode: str

    @property
    def folder(self) -> str:
        return f"{STATE}/jobs/{self.key}/{self.job_id}"

    @property
    def entry(self) -> str:
        return f"{STATE}/open/{self.key}.{self.job_id}.json"


def open_jobs(lake: Lake) -> list[OpenJob]:
    """Jobs started and not yet settled, oldest first."""
    found = []
    for info in lake.listdir(f"{STATE}/open"):
        entry = lake.get_json(lake.relative(info.path))
        if entry is not None:
            found.append(OpenJob(entry["key"], entry["job_id"], entry["mode"]))
    return sorted(found, key=lambda job: job.job_id)


def load_job(lake: Lake, job: OpenJob) -> JobState:
    begin = lake.get_json(f"{job.folder}/begin.json")
    state = JobState(
        key=job.key,
        job_id=job.job_id,
        mode=begin["spec"]["mode"],
        snapshot_date=date.fromisoformat(begin["snapshot_date"]),
        clock=datetime.fromisoformat(begin["clock"]),
        windows=begin["windows"],
    )
    for info in lake.listdir(job.folder):
        name = info.base_name
        if name.startswith("run-") and name.endswith(".json"):
            state.runs.append(name.removeprefix("run-").removesuffix(".json"))
        elif name.startswith("epoch-") and name.endswith(".json"):
            state.absorb(lake.get_json(lake.relative(info.path)))
    return state


def is_done(lake: Lake, job: OpenJob) -> bool:
    return lake.exists(f"{job.folder}/done.json")


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

    Call after settling finished jobs (`harvester.sweep.settle`). Other unfinished jobs lose
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
        other = load_job(lake, job)
        delete_orphans(lake, other)
        if job.key == spec.key:
            state = other
            state.resumed = True
        elif spec.mode == "sweep" and job.mode == "sweep":
            log.warning("abandoning unfinished sweep %s (its committed files stay)", job.job_id)
            lake.put_json(f"{job.folder}/abandoned.json", {"by": run_id})
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
        lake.put_json(f"{state.folder}/begin.json", begin)
        entry = OpenJob(state.key, job_id, spec.mode)
        lake.put_json(entry.entry, {"key": state.key, "job_id": job_id, "mode": spec.mode})
    # Registered before any part is opened, so a crash's orphans can always be found by name.
    lake.put_json(f"{state.folder}/run-{run_id}.json", {"started_at": datetime.now(UTC)})
    state.runs.append(run_id)
    return state


def delete_orphans(lake: Lake, state: JobState) -> list[str]:
    """Delete part files of the job's runs that no manifest lists (the crash's uncommitted tail)."""
    prefixes = tuple(p for run in state.runs for p in (f"part-{run}-", f".part-{run}-"))
    deleted = []
    for dataset in Dataset:
        folder = f"{dataset.value}/snapshot_date={state.snapshot_date.isoformat()}"
        for info in lake.listdir(folder):
            relative = lake.relative(info.path)
            if info.base_name.startswith(prefixes) and relative not in state.files:
                lake.delete(info.path)
                deleted.append(relative)
    if deleted:
        log.info("removed %d uncommitted part files of job %s", len(deleted), state.job_id)
    return deleted


def close_job(lake: Lake, key: str, job_id: str) -> None:
    """The job is settled: drop it from the open index (its folder stays as history)."""
    lake.delete(lake.full(OpenJob(key, job_id, "").entry))


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
    ) -> None:
        self._lake = lake
        self.state = state
        self._run_id = run_id
        self._every = every_seconds
        self._monotonic = monotonic
        self._last = monotonic()
        self._epoch = 0
        self._pending: list[Unit] = []

    def write(self, sink: ParquetSink, units: Iterable[Unit]) -> None:
        """Hand units to the sink; each counts as pending only once all its rows are written."""
        for unit in units:
            for block in unit.blocks:
                sink.write(block)
            # Keep what the manifest names, not the rows: the sink has them now, and an epoch
            # can span minutes of a large backfill.
            self._pending.append(replace(unit, blocks=[]))

    def due(self, sink: ParquetSink) -> bool:
        return sink.rotated or self._monotonic() - self._last >= self._every

    def commit(self, sink: ParquetSink) -> None:
        """Commit the sink's epoch, then write the manifest naming its files and units."""
        files = sink.commit_epoch()
        units, self._pending = self._pending, []
        self._last = self._monotonic()
        if not files and not units:
            return
        manifest = {
            "run_id": self._run_id,
            "files": [(f.path, f.dataset, f.rows) for f in files],
            "media": [i for u in units if u.kind == "media" for i in u.ids],
            "accounts": {i: u.info for u in units if u.kind == "account" for i in u.ids},
            "other": [i for u in units if u.kind == "discovery" for i in u.ids],
        }
        name = f"{self.state.folder}/epoch-{self._run_id}-{self._epoch:06d}.json"
        self._lake.put_json(name, manifest)
        self._epoch += 1
        self.state.absorb(manifest)

    def finish(self) -> None:
        self._lake.put_json(
            f"{self.state.folder}/done.json",
            {"finished_at": datetime.now(UTC), "rows": self.state.rows},
        )


class SinkTask:
    """The run's single sink task: gathers units into chunks, writes each chunk in a worker
    thread, and commits an epoch (files, then their manifest) whenever the checkpoint is due."""

    def __init__(self, sink: ParquetSink, checkpoint: Checkpoint) -> None:
        self._sink = sink
        self._checkpoint = checkpoint
        self._failed = False

    async def run(self, units: MemoryObjectReceiveStream[Unit]) -> None:
        chunk: list[Unit] = []
        size = 0
        try:
            async for unit in units:
                chunk.append(unit)
                size += sum(len(block.rows) for block in unit.blocks)
                if size >= SINK_CHUNK_ROWS or self._checkpoint.due(self._sink):
                    await anyio.to_thread.run_sync(self._write, chunk)
                    chunk, size = [], 0
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

    def _write(self, chunk: list[Unit]) -> None:
        try:
            self._checkpoint.write(self._sink, chunk)
            if self._checkpoint.due(self._sink):
                self._checkpoint.commit(self._sink)
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
