"""Every path in the lake, once: where each data file, report and state object goes (pure, no I/O).

Paths are relative to the lake's root (`Lake.full` makes them absolute). They are the lake's
contract with its readers (DuckDB, Polars, Spark glob them) and with lakes written by earlier
versions (a run resumes from their state), so no name here may change:

    <dataset>/snapshot_date=YYYY-MM-DD/
        part-<run>-<seq:05d>.parquet                  a committed part file
        .part-<run>-<seq:05d>.parquet.tmp             a part being written (local disk)
        part-compact-<stamp>-<n:05d>.parquet          a file merged by `harvester compact`
    _runs/<run>.json                                  a run's report
    _state/cursor.json                                the sweep cursor
    _state/open/<key>.<job>.json                      index of jobs not yet settled
    _state/jobs/<key>/<job>/begin.json                the spec, clock, snapshot date, sweep windows
    _state/jobs/<key>/<job>/run-<run>.json            a run registers before it writes any part
    _state/jobs/<key>/<job>/epoch-<run>-<n:06d>.json  manifest: committed files, units completed
    _state/jobs/<key>/<job>/done.json                 the job finished
    _state/jobs/<key>/<job>/abandoned.json            a newer sweep gave the job up
    _state/compactions/<stamp>-<n:05d>.json           a merge's plan, until it is carried out
    _state/quarantine/<stamp>/<path>                  a damaged file, moved aside (`lake.doctor`)
    _state/quarantine/<stamp>/<path>.note.json        what it was, why, when, by which run
    _state/lock/<run>.<token>.json                    a writer's claim on the lake (`lake.lock`)

Readers skip names starting with '.' or '_', so temporary files and the `_runs`/`_state` folders
are invisible to a dataset read from the root.
"""

from __future__ import annotations

from datetime import date

from harvester.models import Dataset

__all__ = [
    "COMPACTIONS",
    "CURSOR",
    "LOCK",
    "OPEN_JOBS",
    "QUARANTINE",
    "RUNS",
    "STATE",
    "claim_name",
    "compacted_part",
    "compaction_output_stem",
    "compaction_plan",
    "dataset_folder",
    "is_epoch",
    "is_part",
    "is_plan",
    "job_abandoned",
    "job_begin",
    "job_done",
    "job_epoch",
    "job_folder",
    "job_run",
    "lock_claim",
    "open_entry",
    "open_entry_job",
    "part",
    "part_prefixes",
    "partition",
    "partition_date",
    "quarantine_note",
    "quarantined",
    "registered_run",
    "run_report",
    "temp_path",
]

RUNS = "_runs"
STATE = "_state"
CURSOR = f"{STATE}/cursor.json"
OPEN_JOBS = f"{STATE}/open"
COMPACTIONS = f"{STATE}/compactions"
QUARANTINE = f"{STATE}/quarantine"
LOCK = f"{STATE}/lock"

_PARTITION_KEY = "snapshot_date="
_PARQUET = ".parquet"
_JSON = ".json"


# ---- data files ---------------------------------------------------------------------------------


def dataset_folder(dataset: Dataset) -> str:
    """The folder of a dataset's partitions, which readers open as one hive-partitioned dataset."""
    return dataset.value


def partition(dataset: Dataset, snapshot_date: date | str) -> str:
    """`<dataset>/snapshot_date=YYYY-MM-DD`, the hive partition of one dataset and day."""
    day = snapshot_date if isinstance(snapshot_date, str) else snapshot_date.isoformat()
    return f"{dataset_folder(dataset)}/{_PARTITION_KEY}{day}"


def partition_date(folder_name: str) -> str | None:
    """The day a partition folder's name (`snapshot_date=YYYY-MM-DD`) stands for, else None."""
    if not folder_name.startswith(_PARTITION_KEY):
        return None
    return folder_name.removeprefix(_PARTITION_KEY)


def part(dataset: Dataset, snapshot_date: date | str, run_id: str, seq: int) -> str:
    """A run's `seq`-th part file of a dataset and day."""
    return f"{partition(dataset, snapshot_date)}/part-{run_id}-{seq:05d}{_PARQUET}"


def part_prefixes(run_id: str) -> tuple[str, str]:
    """How the names of a run's part files begin: committed, and still being written."""
    return f"part-{run_id}-", f".part-{run_id}-"


def compacted_part(dataset: Dataset, snapshot_date: date | str, stamp: str, n: int) -> str:
    """The `n`-th file one compaction (`stamp`) writes into a partition."""
    return f"{partition(dataset, snapshot_date)}/part-compact-{stamp}-{n:05d}{_PARQUET}"


def is_part(name: str) -> bool:
    """Whether a file name in a partition is a committed data file (not one being written)."""
    return name.endswith(_PARQUET) and not name.startswith(".")


def temp_path(path: str, token: str | None = None) -> str:
    """The hidden name a file is written under before it is renamed to `path` (same folder).

    Without `token`, the name derives from `path` alone (`.part-....parquet.tmp`), so a crash's
    leftover is found by its name; with one, writers of the same object never share a temp file.
    """
    folder, _, name = path.rpartition("/")
    hidden = f".{name}.tmp" if token is None else f".{name}.{token}.tmp"
    return f"{folder}/{hidden}" if folder else hidden


# ---- reports ------------------------------------------------------------------------------------


def run_report(run_id: str) -> str:
    return f"{RUNS}/{run_id}{_JSON}"


# ---- jobs ---------------------------------------------------------------------------------------


def open_entry(key: str, job_id: str) -> str:
    """The job's entry in the index of jobs not yet settled."""
    return f"{OPEN_JOBS}/{key}.{job_id}{_JSON}"


def open_entry_job(name: str) -> tuple[str, str] | None:
    """The (key, job id) an open-index entry's name stands for (keys and job ids hold no dot)."""
    if not name.endswith(_JSON) or name.count(".") != 2:
        return None
    key, job_id = name.removesuffix(_JSON).split(".")
    return key, job_id


def job_folder(key: str, job_id: str) -> str:
    return f"{STATE}/jobs/{key}/{job_id}"


def job_begin(folder: str) -> str:
    return f"{folder}/begin{_JSON}"


def job_run(folder: str, run_id: str) -> str:
    return f"{folder}/run-{run_id}{_JSON}"


def registered_run(name: str) -> str | None:
    """The run id of a job folder's `run-<run>.json`, else None."""
    if name.startswith("run-") and name.endswith(_JSON):
        return name.removeprefix("run-").removesuffix(_JSON)
    return None


def job_epoch(folder: str, run_id: str, epoch: int) -> str:
    """The manifest of a run's `epoch`-th commit."""
    return f"{folder}/epoch-{run_id}-{epoch:06d}{_JSON}"


def is_epoch(name: str) -> bool:
    """Whether a name in a job folder is an epoch manifest."""
    return name.startswith("epoch-") and name.endswith(_JSON)


def job_done(folder: str) -> str:
    return f"{folder}/done{_JSON}"


def job_abandoned(folder: str) -> str:
    return f"{folder}/abandoned{_JSON}"


# ---- compaction ---------------------------------------------------------------------------------


def compaction_plan(stamp: str, n: int) -> str:
    """The plan of one compaction's (`stamp`) `n`-th merge; its output is `compacted_part`."""
    return f"{COMPACTIONS}/{stamp}-{n:05d}{_JSON}"


def is_plan(name: str) -> bool:
    """Whether a name in the compactions folder is a plan (not a plan being written)."""
    return name.endswith(_JSON)


def compaction_output_stem(plan_name: str) -> str:
    """The name stem of the file a plan (`<stamp>-<n>.json`) merges into, in whatever partition."""
    return f"part-compact-{plan_name.removesuffix(_JSON)}{_PARQUET}"


# ---- quarantine ---------------------------------------------------------------------------------


def quarantined(stamp: str, path: str) -> str:
    """Where a damaged file moves in one healing pass (`stamp`), keeping its path in the lake."""
    return f"{QUARANTINE}/{stamp}/{path}"


def quarantine_note(stamp: str, path: str) -> str:
    """The note beside a quarantined file: what it was, why, when, by which run."""
    return f"{quarantined(stamp, path)}.note{_JSON}"


# ---- the writer's lock --------------------------------------------------------------------------


def lock_claim(claimant: str) -> str:
    """A contender's claim on the lake (`lake.lock`); `claimant` is unique to one lock."""
    return f"{LOCK}/{claimant}{_JSON}"


def claim_name(name: str) -> str | None:
    """The claimant of a lock folder entry named by `lock_claim`, else None (a temporary file)."""
    if name.startswith(".") or not name.endswith(_JSON):
        return None
    return name.removesuffix(_JSON)
