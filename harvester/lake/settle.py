"""Settling finished jobs: their rows supersede older rows of their date; the cursor advances.

A job is settled once it is done, by the run that finished it or, after a crash, by the next run
(`lake.jobs.prepare_job`): its rows supersede, per object, the rows that older jobs left in the
same snapshot date (`supersede`), the cursor (which `lake.sweep` reads) advances for the accounts
it completed, and the job leaves the index of open jobs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from harvester.lake import layout
from harvester.lake.checkpoint import (
    COMPETITOR_UNIT,
    INCOMPLETE,
    JobState,
    close_job,
    done_media,
    is_done,
    load_job,
    open_jobs,
    read_begin,
)
from harvester.lake.doctor import quarantine
from harvester.lake.fs import DamagedFile, Lake
from harvester.lake.sweep import midnight
from harvester.models import Dataset

__all__ = ["settle", "supersede"]

log = logging.getLogger("harvester")

# Row groups of files rewritten by a supersede.
REWRITE_ROW_GROUP = 131_072


def settle(lake: Lake, finished: JobState | None = None) -> list[str]:
    """Finish settling every job that is done but still open (a crash may have stopped it).

    `finished`: the state of the job this process has just finished, which says what its
    manifests say; it is used as is rather than read back (a backfill of a million media has
    megabytes of manifests, and parsing them would hold every id as a string for a moment).
    """
    settled = []
    for job in open_jobs(lake):
        if not is_done(lake, job):
            continue
        if finished is not None and (finished.key, finished.job_id) == (job.key, job.job_id):
            state = finished
        else:
            state = load_job(lake, job)
        supersede(lake, state)
        _advance_cursor(lake, state, read_begin(lake, job.folder))
        close_job(lake, job.key, job.job_id)
        settled.append(job.job_id)
    return settled


def _advance_cursor(lake: Lake, state: JobState, begin: dict[str, Any]) -> None:
    """Idempotent: every field moves to the max of what it was and what this job completed."""
    spec = begin["spec"]
    doc = lake.get_object(layout.CURSOR, "accounts") or {"accounts": {}}
    clock = state.clock
    sweep = state.mode == "sweep"
    insights_end = clock
    if spec["until"] is not None:
        insights_end = min(clock, datetime.fromisoformat(spec["until"]))
    for account, info in state.accounts.items():
        entry = doc["accounts"].setdefault(account, {})
        if info.get("listing_ok") and (sweep or spec["until"] is None):
            entry["listed_at"] = _latest(entry.get("listed_at"), clock)
        if info.get("insights_ok") and spec["harvest"].get("account_insights"):
            entry["insights_until"] = _latest(entry.get("insights_until"), insights_end)
        window = state.windows.get(account)
        if sweep and window is not None:
            entry["day"] = {
                "date": state.snapshot_date.isoformat(),
                "media_since": window["media_since"],
                "insights": window["insights_since"],
            }
    lake.put_json(layout.CURSOR, doc)


def _latest(stored: str | None, moment: datetime) -> str:
    return max(moment, datetime.fromisoformat(stored) if stored else moment).isoformat()


def supersede(lake: Lake, state: JobState) -> int:
    """Drop, from the other files of the job's snapshot date, the rows of objects this job wrote.

    Objects: a media (`media` and `media_insights` rows, by media_id); an account's profile
    (`accounts` rows, by account_id, competitors' too); an account's insights over
    the days this job covered for it (end_times after the midnight that starts the day its first
    row closes, up to its last; rows without end_time, the lifetime breakdowns, included); an
    error about a media or account the job completed, or about a competitor it asked. Each
    touched file is rewritten under its own name in one atomic replace (rename on disk, one PUT
    on S3), so a reader sees each file before or after, and every current row at least once
    throughout.
    """
    touched = 0
    for dataset in Dataset:
        others = [
            lake.relative(info.path)
            for info in lake.listdir(layout.partition(dataset, state.snapshot_date))
            if layout.is_part(info.base_name) and lake.relative(info.path) not in state.files
        ]
        if not others:
            continue
        mine = [path for path, d in state.files.items() if d == dataset.value]
        replaced = _replaced(lake, dataset, mine, state)
        for path in others:
            touched += _filter_file(lake, path, replaced, state.job_id)
    if touched:
        log.info("job %s superseded rows in %d older files", state.job_id, touched)
    return touched


Replaced = Callable[[pa.Table], pa.Array]


def _replaced(lake: Lake, dataset: Dataset, files: list[str], state: JobState) -> Replaced:
    """A test telling, for each row of an older file, whether this job's rows replace it.

    Built when settling, from the lake, in compact forms: a job of a million media must not
    hold a million Python strings here (its manifests' ids as an `IdSet`, its files' media ids
    as one Arrow array).
    """
    if dataset is Dataset.ERRORS:
        media, accounts = done_media(lake, state), set(state.accounts)
        # A competitor's errors are about its username: the job's outcome for it replaces them.
        accounts |= {
            unit.removeprefix(COMPETITOR_UNIT).removesuffix(INCOMPLETE)
            for unit in state.other
            if unit.startswith(COMPETITOR_UNIT)
        }

        def completed(table: pa.Table) -> pa.Array:
            ids = table.column("object_id").to_pylist()
            return pa.array([i in media or i in accounts for i in ids], type=pa.bool_())

        return completed
    if dataset is not Dataset.ACCOUNT_INSIGHTS:
        # A media's rows by media_id; an account's profile (`accounts`, owned or competitor) by
        # account_id: one row per account and snapshot date. Unique per file first: a file
        # holds each media's ~10 insight rows.
        key = "account_id" if dataset is Dataset.ACCOUNTS else "media_id"
        uniques = [pc.unique(lake.read_parquet(path, [key]).column(key)) for path in files]
        ids = pc.unique(pa.chunked_array(uniques, type=pa.string()).combine_chunks())
        return lambda table: pc.is_in(table.column(key), value_set=ids)
    spans: dict[str, tuple[datetime, datetime]] = {}
    for path in files:
        table = lake.read_parquet(path, ["account_id", "end_time"])
        for account, end in _rows(table, ["account_id", "end_time"]):
            if end is None:
                spans.setdefault(account, (datetime.max.replace(tzinfo=UTC), _EPOCH))
                continue
            lo, hi = spans.get(account, (end, end))
            # A row closing at `end` is the day before it (a total closing at midnight, a series
            # value at 07:00): the job covers from the midnight that day starts at, exclusive.
            start = midnight((end - _INSTANT).date())
            spans[account] = (min(lo, start), max(hi, end))

    def covered(table: pa.Table) -> pa.Array:
        return pa.array(
            [
                account in spans and (end is None or spans[account][0] < end <= spans[account][1])
                for account, end in _rows(table, ["account_id", "end_time"])
            ],
            type=pa.bool_(),
        )

    return covered


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INSTANT = timedelta(microseconds=1)


def _rows(table: pa.Table, columns: list[str]) -> Iterable[tuple[Any, ...]]:
    return zip(*(table.column(c).to_pylist() for c in columns), strict=True)


def _filter_file(lake: Lake, path: str, replaced: Replaced, job_id: str) -> int:
    try:
        table = lake.read_parquet(path)
    except DamagedFile as damaged:
        # An older file whose footer looked whole (`lake.doctor` passed it) but whose data is
        # not: set aside like any damaged settled file, so settling, and every later run, goes on.
        quarantine(lake, damaged, by=f"settling {job_id}")
        return 1
    keep = pc.invert(replaced(table))
    kept = int(pc.sum(keep).as_py() or 0)
    if kept == table.num_rows:
        return 0
    if kept == 0:
        lake.delete(lake.full(path))
    else:
        lake.write_parquet(path, table.filter(keep), row_group_rows=REWRITE_ROW_GROUP)
    return 1
