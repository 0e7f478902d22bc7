"""The commit protocol, driven step by step on local disk and on a real S3-compatible server.

A "crash" here is an abandoned run: its objects are dropped without any cleanup, exactly what a
SIGKILL leaves (tests/test_resume.py kills real processes).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow.dataset as pads
import pytest
from media_rows import media_row
from s3_server import make_bucket, moto_endpoint  # noqa: F401  (a fixture)

from harvester.config import OutputSettings
from harvester.lake.checkpoint import Checkpoint, JobSpec, Unit, open_jobs, start_job
from harvester.lake.fs import Lake, open_lake
from harvester.lake.settle import settle
from harvester.lake.sink import ParquetSink
from harvester.models import Dataset, Rows

CLOCK = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = date(2026, 3, 1)
SPEC = JobSpec("backfill", ("1784",), "v25.0", None, None, (("stories", True),))


@pytest.fixture(params=["local", "s3", "s3 via AWS_ENDPOINT_URL"])
def lake(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Lake]:
    if request.param == "local":
        yield open_lake(str(tmp_path / "lake"))
        return
    endpoint = request.getfixturevalue("moto_endpoint")
    bucket = f"lake-{abs(hash(request.node.name)) % 10**8}"
    make_bucket(endpoint, bucket)
    if request.param == "s3":
        yield open_lake(f"s3://{bucket}/prefix", s3_endpoint=endpoint)
        return
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    yield open_lake(f"s3://{bucket}/prefix")


def media_unit(media_id: str) -> Unit:
    fetched = datetime(2026, 3, 1, tzinfo=UTC)
    media = media_row(
        "1784", media_id, None, "IMAGE", "FEED", None, None, fetched_at=fetched, run_id="r"
    )
    insight = ("1784", media_id, "IMAGE", "FEED", None, "reach", "lifetime", None, 5, None, "v25.0")
    return Unit(
        "media",
        (media_id,),
        [Rows(Dataset.MEDIA, [media]), Rows(Dataset.MEDIA_INSIGHTS, [(*insight, fetched, "r")])],
    )


def begin(lake: Lake, run_id: str, *, isolated: bool = False) -> tuple[ParquetSink, Checkpoint]:
    state = start_job(
        lake, SPEC, run_id, clock=CLOCK, snapshot_date=DAY, windows=dict, isolated=isolated
    )
    settings = OutputSettings(lake.root, row_group_rows=10)
    sink = ParquetSink(lake, run_id=run_id, snapshot_date=state.snapshot_date, settings=settings)
    return sink, Checkpoint(lake, state, run_id, every_seconds=3600)


def media_ids(lake: Lake, dataset: Dataset) -> list[str]:
    folder = lake.full(dataset.value)
    table = pads.dataset(folder, filesystem=lake.fs, format="parquet", partitioning="hive")
    return sorted(table.to_table().column("media_id").to_pylist())


def parts(lake: Lake) -> set[str]:
    return {lake.relative(i.path) for d in Dataset for i in lake.files(d.value)}


def test_a_crash_after_parts_before_their_manifest_is_undone_by_the_next_run(lake: Lake) -> None:
    sink, checkpoint = begin(lake, "20260301T120000Z-aaaaaa")
    checkpoint.write(sink, [media_unit("m1"), media_unit("m2")])
    checkpoint.commit(sink)
    committed = parts(lake)
    checkpoint.write(sink, [media_unit("m3")])
    sink.commit_epoch()  # the parts are committed... and the run dies before the manifest
    assert len(parts(lake)) == 2 * len(committed)
    assert media_ids(lake, Dataset.MEDIA) == ["m1", "m2", "m3"]

    sink, checkpoint = begin(lake, "20260301T120500Z-bbbbbb")
    state = checkpoint.state
    assert state.resumed
    assert state.media == {"m1", "m2"}
    assert state.clock == CLOCK
    assert parts(lake) == committed  # the orphans are gone, the committed parts stay
    assert media_ids(lake, Dataset.MEDIA_INSIGHTS) == ["m1", "m2"]

    checkpoint.write(sink, [media_unit("m3")])
    checkpoint.commit(sink)
    sink.close()
    checkpoint.finish()
    settle(lake)
    assert media_ids(lake, Dataset.MEDIA) == ["m1", "m2", "m3"]
    assert media_ids(lake, Dataset.MEDIA_INSIGHTS) == ["m1", "m2", "m3"]
    assert open_jobs(lake) == []
    # A finished job is not resumed: the same spec begins a fresh job.
    _, fresh = begin(lake, "20260301T121000Z-cccccc")
    assert not fresh.state.resumed and fresh.state.media == set()
    assert fresh.state.job_id != state.job_id


def test_a_shard_retried_after_marking_its_job_done_finds_that_job(lake: Lake) -> None:
    """A Ray worker may die between `done.json` and reporting back; its retry must not begin a
    second job of the same key (the driver would then settle two jobs that supersede each other).
    """
    sink, checkpoint = begin(lake, "20260301T120000Z-aaaaaa", isolated=True)
    checkpoint.write(sink, [media_unit("m1")])
    checkpoint.commit(sink)
    sink.close()
    checkpoint.finish()  # done.json is written... and the worker dies before it reports back

    _, retry = begin(lake, "20260301T120500Z-bbbbbb", isolated=True)
    assert retry.state.resumed and retry.state.job_id == checkpoint.state.job_id
    assert retry.state.media == {"m1"}
    assert [job.job_id for job in open_jobs(lake)] == [checkpoint.state.job_id]


def test_a_resumed_job_keeps_its_clock_date_and_windows(lake: Lake) -> None:
    spec = JobSpec("sweep", ("1784",), "v25.0", None, None, (), DAY.isoformat())
    windows: dict[str, Any] = {"1784": {"media_since": "a", "insights_since": "b"}}
    first = start_job(lake, spec, "r1", clock=CLOCK, snapshot_date=DAY, windows=lambda: windows)
    later = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    again = start_job(lake, spec, "r2", clock=later, snapshot_date=later.date(), windows=lambda: {})
    assert again.resumed and again.job_id == first.job_id
    assert (again.clock, again.snapshot_date, again.windows) == (CLOCK, DAY, windows)
    assert again.runs == ["r1", "r2"]


def test_a_sink_failure_commits_nothing_of_the_failing_unit(tmp_path: Path) -> None:
    lake = open_lake(str(tmp_path))
    sink, checkpoint = begin(lake, "20260301T120000Z-aaaaaa")
    checkpoint.write(sink, [media_unit("m1")])
    checkpoint.commit(sink)
    broken = Unit("media", ("m2",), [*media_unit("m2").blocks, Rows(Dataset.MEDIA, [("x",)])])
    with pytest.raises(ValueError, match="has 1 fields"):
        checkpoint.write(sink, [broken])
    sink.abort()
    assert media_ids(lake, Dataset.MEDIA) == ["m1"]
    _, resumed = begin(lake, "20260301T120500Z-bbbbbb")
    assert resumed.state.media == {"m1"}
