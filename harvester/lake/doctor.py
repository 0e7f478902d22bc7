"""Damaged lake files: find each one, name it and what is wrong, and heal the lake around it.

One walk (`_Doctor`) decides for every kind of file what healing means; `examine` only reports
what it finds, `heal` also does it. `harvester doctor` calls both; every run (`lake.jobs`), the
Ray driver and `harvester compact` call `heal` before they read anything, so no damaged file can
make every later run fail. Healing never deletes a user's file: what cannot be read is moved to
`_state/quarantine/<stamp>/<its path>` with a note beside it (`layout.quarantined`).

What heals how:
- `_state/cursor.json` unreadable: quarantined; sweeps act as if there were none (each account
  gets its default window, `lake.sweep`).
- a compaction plan unreadable: quarantined when no output of its merge exists (its inputs are
  still live, nothing was merged). When an output exists the plan is left in place and named:
  its inputs cannot be known, and guessing could delete rows or leave them twice.
- a plan whose merged output is damaged: output and plan are quarantined, the inputs stay live
  (a truncated output never causes the deletion of its inputs).
- an unfinished (not yet settled) job:
  * its begin object unreadable: the job restarts from scratch: its folder and open-index
    entry go to quarantine and the parts of its runs are deleted as orphans;
  * its open-index entry unreadable: rewritten from the begin object;
  * a run registration unreadable: quarantined and written again (the name is what counts);
  * `done.json` unreadable: quarantined, the job counts as unfinished;
  * an epoch manifest unreadable, or a part file it names unreadable: the epoch is dropped,
    and so is every later epoch of the job (a later one may mark done an account whose media
    were in it). A unit may have rows in any file of its epoch, so the damaged file and the
    manifests go to quarantine, the epochs' other files are deleted as orphans (no manifest
    names them any more), and the job counts as unfinished: the next run of its config
    harvests those units again.
- any other file in a partition (a settled job's part, or foreign junk) that is not a whole
  Parquet file with the dataset's key columns: quarantined. A settled job's rows come back with
  the next backfill or sweep of that date, whose settling supersedes what is left.
- `_runs/<run>.json` unreadable (only when asked: nothing in a run reads reports): quarantined.

Partition files are judged from their Parquet footer (no data is read), so a run's healing costs
one small read per file of the dates it touches; `harvester doctor` looks at every date.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow.fs as pafs

from harvester.lake import layout
from harvester.lake.checkpoint import (
    OpenJob,
    delete_orphans,
    load_job,
    read_begin,
    read_manifest,
)
from harvester.lake.fs import DamagedFile, Lake
from harvester.lake.sink import SORT_KEYS
from harvester.models import Dataset

__all__ = ["Damage", "examine", "heal", "quarantine"]

# What becomes of a file in a partition that no unfinished job owns and that cannot be read.
SETTLED_FILE_ACTION = "quarantine; the next harvest of this date brings its rows back"

log = logging.getLogger("harvester")


@dataclass(frozen=True)
class Damage:
    """One damaged file: its path in the lake, what is wrong, and what healing does about it.

    `healed` is False when healing leaves it for a person (see the module docstring)."""

    path: str
    why: str
    action: str
    healed: bool = True

    def line(self) -> str:
        return f"{self.path}: {self.why}; {self.action}"


def examine(
    lake: Lake, *, dates: Iterable[str] | None = None, reports: bool = True
) -> list[Damage]:
    """Every damaged file and what `heal` would do, changing nothing."""
    return _Doctor(lake, fix=False, by="doctor").walk(dates, reports)


def heal(
    lake: Lake, *, by: str, dates: Iterable[str] | None = None, reports: bool = False
) -> list[Damage]:
    """Heal every damaged file (each logged as one warning line) and return what was done.

    `by`: the run (or command) healing, written in each quarantine note. `dates`: only the
    partitions of these snapshot dates, besides those of unfinished jobs (None: every date).
    """
    return _Doctor(lake, fix=True, by=by).walk(dates, reports)


def quarantine(lake: Lake, damaged: DamagedFile, *, by: str) -> Damage:
    """Heal a settled partition file found damaged while being read (its footer was whole, its
    data was not): quarantined like `heal` quarantines one, with its warning line."""
    damage = Damage(damaged.path, damaged.why, SETTLED_FILE_ACTION)
    log.warning("damaged file %s", damage.line())
    _move_aside(lake, _stamp(), damaged.path, damaged.why, by)
    return damage


def _stamp() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def _move_aside(lake: Lake, stamp: str, path: str, why: str, by: str) -> None:
    """Move a file under `_state/quarantine/<stamp>/` keeping its path, with a note beside it."""
    if not lake.exists(path):
        return
    lake.move(path, layout.quarantined(stamp, path))
    note = {"path": path, "why": why, "at": datetime.now(UTC), "by": by}
    lake.put_json(layout.quarantine_note(stamp, path), note)


@dataclass
class _Doctor:
    lake: Lake
    fix: bool
    by: str
    found: list[Damage] = field(default_factory=list)
    stamp: str = field(default_factory=_stamp)
    # Files that unfinished jobs' manifests name, and how their runs' part files begin.
    committed: set[str] = field(default_factory=set)
    running: tuple[str, ...] = ()
    job_dates: set[str] = field(default_factory=set)

    def walk(self, dates: Iterable[str] | None, reports: bool) -> list[Damage]:
        self._cursor()
        self._plans()
        for info in self.lake.listdir(layout.OPEN_JOBS):
            self._job(info.base_name)
        scope = None if dates is None else {*dates, *self.job_dates}
        self._partitions(scope)
        if reports:
            for info in self.lake.listdir(layout.RUNS):
                self._unreadable_json(self.lake.relative(info.path), "quarantine")
        return self.found

    # ---- what is found, and what is done -------------------------------------------------------

    def _report(self, path: str, why: str, action: str, *, healed: bool = True) -> None:
        damage = Damage(path, why, action, healed)
        self.found.append(damage)
        if self.fix:
            log.warning("damaged file %s", damage.line())

    def _quarantine(self, path: str, why: str) -> None:
        if self.fix:
            _move_aside(self.lake, self.stamp, path, why, self.by)

    def _unreadable_json(self, path: str, action: str) -> DamagedFile | None:
        try:
            self.lake.get_json(path)
        except DamagedFile as damaged:
            self._report(path, damaged.why, action)
            self._quarantine(path, damaged.why)
            return damaged
        return None

    # ---- the cursor and compaction plans -------------------------------------------------------

    def _cursor(self) -> None:
        try:
            self.lake.get_object(layout.CURSOR, "accounts")
        except DamagedFile as damaged:
            action = "quarantine; sweeps ask each account's default window"
            self._report(layout.CURSOR, damaged.why, action)
            self._quarantine(layout.CURSOR, damaged.why)

    def _plans(self) -> None:
        for info in self.lake.listdir(layout.COMPACTIONS):
            if not layout.is_plan(info.base_name):
                continue
            path = self.lake.relative(info.path)
            try:
                plan = self.lake.get_object(path, "inputs", "output")
            except DamagedFile as damaged:
                outputs = self._merge_outputs(layout.compaction_output_stem(info.base_name))
                if outputs:
                    action = (
                        f"left in place: its merge output {outputs[0]} exists and the inputs it "
                        "replaced cannot be known; check them and move the plan aside by hand"
                    )
                    self._report(path, damaged.why, action, healed=False)
                else:
                    self._report(path, damaged.why, "quarantine; no merge output exists")
                    self._quarantine(path, damaged.why)
                continue
            output = str(plan["output"]) if plan else ""
            dataset = _dataset_of(output)
            if plan is None or dataset is None:
                continue
            problem = self.lake.parquet_problem(output, SORT_KEYS[dataset])
            if problem is not None:
                action = "quarantine it and its plan; its inputs stay, compact merges them again"
                self._report(output, problem, action)
                self._quarantine(output, problem)
                self._quarantine(path, f"its merge output {output} is damaged: {problem}")

    def _merge_outputs(self, name: str) -> list[str]:
        found = []
        for dataset in Dataset:
            for folder in self.lake.listdir(layout.dataset_folder(dataset)):
                candidate = f"{self.lake.relative(folder.path)}/{name}"
                if self.lake.exists(candidate):
                    found.append(candidate)
        return found

    # ---- unfinished jobs -----------------------------------------------------------------------

    def _job(self, entry_name: str) -> None:
        names = layout.open_entry_job(entry_name)
        if names is None:
            return
        job = OpenJob(names[0], names[1], mode="")
        runs = [
            run
            for info in self.lake.listdir(job.folder)
            if (run := layout.registered_run(info.base_name)) is not None
        ]
        try:
            begin = read_begin(self.lake, job.folder)
        except DamagedFile as damaged:
            self._restart(job, runs, damaged)
            return
        try:
            self.lake.get_object(job.entry, "key", "job_id", "mode")
        except DamagedFile as damaged:
            self._report(job.entry, damaged.why, "rewrite it from the job's begin object")
            if self.fix:
                entry = {"key": job.key, "job_id": job.job_id, "mode": begin["spec"]["mode"]}
                self.lake.put_json(job.entry, entry)
        self.running += tuple(p for run in runs for p in layout.part_prefixes(run))
        self.job_dates.add(str(begin["snapshot_date"]))
        for run in runs:
            path = layout.job_run(job.folder, run)
            if self._unreadable_json(path, "quarantine and register the run again") and self.fix:
                self.lake.put_json(path, {"started_at": None, "healed_by": self.by})
        done = layout.job_done(job.folder)
        self._unreadable_json(done, "quarantine; the job counts as unfinished")
        if self._epochs(job) and self.fix:
            if self.lake.exists(done):
                self.lake.delete(self.lake.full(done))
            delete_orphans(self.lake, load_job(self.lake, job))

    def _epochs(self, job: OpenJob) -> list[str]:
        """Check each manifest and the files it names; return the manifests dropped.

        From the first damaged epoch on, every later epoch of the job is dropped too: an account
        unit is committed after all its media, so a later manifest may mark done an account
        whose media were in the damaged epoch, and a resume would then never list them again.
        Manifests sort in commit order (run ids begin with their start time, epochs count up).
        """
        paths = [
            self.lake.relative(info.path)
            for info in self.lake.listdir(job.folder)
            if layout.is_epoch(info.base_name)
        ]
        for n, path in enumerate(paths):
            later = len(paths) - n - 1
            drop = f"drop this epoch and the {later} after it of job {job.job_id} (their files "
            drop += "are deleted as orphans); the next run of its config harvests them again"
            try:
                manifest = read_manifest(self.lake, path)
            except DamagedFile as damaged:
                self._report(path, damaged.why, f"quarantine; {drop}")
                self._quarantine(path, damaged.why)
                return self._drop(paths[n:], f"follows the damaged {path}")
            damaged_files = []
            for file, dataset, _rows in manifest["files"]:
                problem = self.lake.parquet_problem(file, SORT_KEYS[Dataset(dataset)])
                if problem is not None:
                    damaged_files.append((file, problem))
            for file, problem in damaged_files:
                self._report(file, problem, f"quarantine it and its manifest {path}; {drop}")
                self._quarantine(file, problem)
            if damaged_files:
                return self._drop(paths[n:], f"names the damaged {damaged_files[0][0]}")
            self.committed.update(file for file, _, _ in manifest["files"])
        return []

    def _drop(self, manifests: list[str], why: str) -> list[str]:
        for path in manifests:
            self._quarantine(path, f"epoch dropped: {why}")
        return manifests

    def _restart(self, job: OpenJob, runs: list[str], damaged: DamagedFile) -> None:
        action = f"quarantine job {job.job_id}'s folder and entry, delete its parts; it restarts"
        self._report(damaged.path, damaged.why, action)
        if not self.fix:
            return
        for info in list(self.lake.files(job.folder)):
            self._quarantine(self.lake.relative(info.path), f"job without begin: {damaged.why}")
        self._quarantine(job.entry, f"job without begin: {damaged.why}")
        prefixes = tuple(p for run in runs for p in layout.part_prefixes(run))
        for dataset in Dataset:
            for folder in self.lake.listdir(layout.dataset_folder(dataset)):
                for info in self.lake.listdir(self.lake.relative(folder.path)):
                    if prefixes and info.base_name.startswith(prefixes):
                        self.lake.delete(info.path)

    # ---- partitions ----------------------------------------------------------------------------

    def _partitions(self, dates: set[str] | None) -> None:
        for dataset in Dataset:
            for folder in self.lake.listdir(layout.dataset_folder(dataset)):
                day = layout.partition_date(folder.base_name)
                if day is None or (dates is not None and day not in dates):
                    continue
                for info in self.lake.listdir(self.lake.relative(folder.path)):
                    if info.type == pafs.FileType.File:
                        self._partition_file(dataset, self.lake.relative(info.path), info.base_name)

    def _partition_file(self, dataset: Dataset, path: str, name: str) -> None:
        # Hidden names are parts being written (a crash's are deleted with its job's orphans);
        # files of unfinished jobs were judged with their epochs, or are uncommitted orphans.
        if name.startswith((".", "_")) or path in self.committed or name.startswith(self.running):
            return
        if layout.is_part(name):
            problem = self.lake.parquet_problem(path, SORT_KEYS[dataset])
        else:
            problem = "not a part file (no .parquet name)"
        if problem is not None:
            self._report(path, f"{problem}, in dataset {dataset.value}", SETTLED_FILE_ACTION)
            self._quarantine(path, problem)


def _dataset_of(path: str) -> Dataset | None:
    try:
        return Dataset(path.split("/", 1)[0])
    except ValueError:
        return None
