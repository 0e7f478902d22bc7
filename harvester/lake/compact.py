"""`harvester compact`: merge the small files of a dataset's snapshot dates into sorted large ones.

Each merge follows a plan written first (`layout.compaction_plan`: inputs, output):
1. the plan object is written; 2. the output is committed (renamed into place on disk, or its
upload completed on S3: either way it appears whole); 3. the inputs are deleted; 4. the plan is
deleted. A reader listing the folder sees the inputs, then for the moment between steps 2 and 3
both the inputs and the output (rows counted twice), then the output alone; never neither. A crash
between 2 and 3 is rolled forward by the next `compact` or `run` (the output exists, so its inputs
go); a crash before 2 leaves the inputs live and the plan is dropped.

Partitions with a job not yet settled (see `lake.checkpoint`) are skipped: their manifests
name files a resume or a supersede still needs.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa

from harvester.lake import layout
from harvester.lake.checkpoint import load_job, open_jobs
from harvester.lake.doctor import heal, quarantine
from harvester.lake.fs import DamagedFile, Lake
from harvester.lake.schema import conform
from harvester.lake.sink import SORT_KEYS
from harvester.models import Dataset

__all__ = ["CompactReport", "compact", "recover_compactions"]

log = logging.getLogger("harvester")

# A file at least this share of the target is left alone: merging it gains little.
SMALL_SHARE = 0.5


@dataclass
class CompactReport:
    merged: list[tuple[str, int, int]] = field(default_factory=list)  # (output, inputs, rows)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (partition, why)


def recover_compactions(lake: Lake) -> int:
    """Finish or drop the plans a crash left behind; returns how many there were.

    A plan rolls forward (its inputs go) only when its output opens as a whole Parquet file; a
    damaged plan or output is left to `lake.doctor` (run first by every caller), and never causes
    the deletion of anything.
    """
    plans = [info for info in lake.listdir(layout.COMPACTIONS) if layout.is_plan(info.base_name)]
    for info in plans:
        try:
            plan = lake.get_object(lake.relative(info.path), "inputs", "output")
        except DamagedFile as damaged:
            log.warning("compaction plan %s left alone: %s", damaged.path, damaged.why)
            continue
        if plan is not None and lake.exists(plan["output"]):
            dataset = Dataset(plan["output"].split("/", 1)[0])
            problem = lake.parquet_problem(plan["output"], SORT_KEYS[dataset])
            if problem is not None:
                log.warning("compaction output %s left alone: %s", plan["output"], problem)
                continue
            for path in plan["inputs"]:
                lake.delete(lake.full(path))
        lake.delete(info.path)
    return len(plans)


def compact(
    lake: Lake,
    *,
    dataset: Dataset | None = None,
    snapshot_date: str | None = None,
    target_mb: float = 128.0,
    row_group_rows: int = 131_072,
    guard: Callable[[], None] = lambda: None,
) -> CompactReport:
    """Heal damaged files (`lake.doctor`), then merge small files of each (dataset, snapshot
    date), or of the one given. `guard` runs before each partition and raises to stop (the
    lake's lock was lost: `lake.lock`)."""
    heal(lake, by="compact")
    recover_compactions(lake)
    report = CompactReport()
    busy = {load_job(lake, job).snapshot_date.isoformat() for job in open_jobs(lake)}
    target = int(target_mb * 1024 * 1024)
    for ds in [dataset] if dataset else list(Dataset):
        for folder in lake.listdir(layout.dataset_folder(ds)):
            day = layout.partition_date(folder.base_name)
            if day is None or (snapshot_date is not None and day != snapshot_date):
                continue
            if day in busy:
                partition = layout.partition(ds, day)
                report.skipped.append((partition, "a harvest job of this date is not finished"))
                continue
            guard()
            _compact_partition(lake, ds, day, target, row_group_rows, report)
    return report


def _compact_partition(
    lake: Lake, dataset: Dataset, day: str, target: int, group: int, report: CompactReport
) -> None:
    small = [
        info
        for info in lake.listdir(layout.partition(dataset, day))
        if layout.is_part(info.base_name) and info.size < target * SMALL_SHARE
    ]
    if len(small) < 2:
        return
    batches: list[list[str]] = [[]]
    size = 0
    for info in small:
        if batches[-1] and size + info.size > target:
            batches.append([])
            size = 0
        batches[-1].append(lake.relative(info.path))
        size += info.size
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    for n, inputs in enumerate(batches):
        if len(inputs) < 2:
            continue
        output = layout.compacted_part(dataset, day, stamp, n)
        plan = layout.compaction_plan(stamp, n)
        try:
            rows = _merge(lake, dataset, inputs, output, group, plan)
        except DamagedFile as damaged:
            # Nothing was merged: the plan goes, the damaged input is set aside, the rest stay.
            lake.delete(lake.full(plan))
            quarantine(lake, damaged, by="compact")
            report.skipped.append((layout.partition(dataset, day), f"{damaged} (quarantined)"))
            continue
        report.merged.append((output, len(inputs), rows))
        log.debug("compacted %d files into %s (%d rows)", len(inputs), output, rows)


def _merge(
    lake: Lake, dataset: Dataset, inputs: list[str], output: str, group: int, plan: str
) -> int:
    lake.put_json(plan, {"inputs": inputs, "output": output})
    tables = [conform(lake.read_parquet(path), dataset) for path in inputs]
    merged = pa.concat_tables(tables).sort_by([(key, "ascending") for key in SORT_KEYS[dataset]])
    lake.write_parquet(output, merged, row_group_rows=group)
    for path in inputs:
        lake.delete(lake.full(path))
    lake.delete(lake.full(plan))
    return int(merged.num_rows)
