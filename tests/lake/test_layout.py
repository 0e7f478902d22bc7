"""The lake's paths, spelled out: readers and lakes written by earlier versions depend on each."""

from __future__ import annotations

from datetime import date

import pytest

from harvester.lake import layout
from harvester.models import Dataset

DAY = date(2026, 3, 1)
JOB = "_state/jobs/sweep-0123456789abcdef/20260301T120000Z-a1b2c3"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (layout.dataset_folder(Dataset.MEDIA_INSIGHTS), "media_insights"),
        (layout.partition(Dataset.MEDIA, DAY), "media/snapshot_date=2026-03-01"),
        (layout.partition(Dataset.ERRORS, "2026-03-01"), "errors/snapshot_date=2026-03-01"),
        (
            layout.part(Dataset.ACCOUNT_INSIGHTS, DAY, "20260301T120000Z-ab12", 7),
            "account_insights/snapshot_date=2026-03-01/part-20260301T120000Z-ab12-00007.parquet",
        ),
        (
            layout.temp_path("media/snapshot_date=2026-03-01/part-r-00000.parquet"),
            "media/snapshot_date=2026-03-01/.part-r-00000.parquet.tmp",
        ),
        (layout.temp_path("/lake/_runs/r.json", "f00d"), "/lake/_runs/.r.json.f00d.tmp"),
        (layout.temp_path("top.json"), ".top.json.tmp"),
        (
            layout.compacted_part(Dataset.MEDIA, "2026-03-01", "20260302T000000Z-c0ffee", 1),
            "media/snapshot_date=2026-03-01/part-compact-20260302T000000Z-c0ffee-00001.parquet",
        ),
        (layout.run_report("20260301T120000Z-ab12"), "_runs/20260301T120000Z-ab12.json"),
        (layout.CURSOR, "_state/cursor.json"),
        (layout.OPEN_JOBS, "_state/open"),
        (
            layout.open_entry("sweep-0123456789abcdef", "20260301T120000Z-a1b2c3"),
            "_state/open/sweep-0123456789abcdef.20260301T120000Z-a1b2c3.json",
        ),
        (layout.job_folder("sweep-0123456789abcdef", "20260301T120000Z-a1b2c3"), JOB),
        (layout.job_begin(JOB), f"{JOB}/begin.json"),
        (layout.job_run(JOB, "r1"), f"{JOB}/run-r1.json"),
        (layout.job_epoch(JOB, "r1", 12), f"{JOB}/epoch-r1-000012.json"),
        (layout.job_done(JOB), f"{JOB}/done.json"),
        (layout.job_abandoned(JOB), f"{JOB}/abandoned.json"),
        (
            layout.compaction_plan("20260302T000000Z-c0ffee", 1),
            "_state/compactions/20260302T000000Z-c0ffee-00001.json",
        ),
    ],
)
def test_paths_are_the_lakes_contract(path: str, expected: str) -> None:
    assert path == expected


@pytest.mark.parametrize(
    ("name", "part", "epoch", "run", "day"),
    [
        ("part-r1-00000.parquet", True, False, None, None),
        ("part-compact-x-00000.parquet", True, False, None, None),
        (".part-r1-00000.parquet.tmp", False, False, None, None),
        (".part-r1-00000.parquet", False, False, None, None),
        ("epoch-r1-000000.json", False, True, None, None),
        (".epoch-r1-000000.json.f00d.tmp", False, False, None, None),
        ("run-20260301T120000Z-ab12.json", False, False, "20260301T120000Z-ab12", None),
        ("begin.json", False, False, None, None),
        ("snapshot_date=2026-03-01", False, False, None, "2026-03-01"),
    ],
)
def test_names_are_read_back(
    name: str, part: bool, epoch: bool, run: str | None, day: str | None
) -> None:
    assert layout.is_part(name) is part
    assert layout.is_epoch(name) is epoch
    assert layout.registered_run(name) == run
    assert layout.partition_date(name) == day


def test_a_runs_parts_are_found_by_prefix() -> None:
    committed, writing = layout.part_prefixes("r1")
    assert layout.part(Dataset.MEDIA, DAY, "r1", 3).rpartition("/")[2].startswith(committed)
    assert (
        layout.temp_path(layout.part(Dataset.MEDIA, DAY, "r1", 3))
        .rpartition("/")[2]
        .startswith(writing)
    )
    assert not layout.part(Dataset.MEDIA, DAY, "r10", 3).rpartition("/")[2].startswith(committed)
