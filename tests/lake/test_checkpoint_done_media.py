"""Done-media bookkeeping: a run holds only what earlier runs of its job committed, and settling
reads the job's media from its manifests, so memory does not grow with the media harvested."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import pyarrow.dataset as pads
import pytest
from hypothesis import given
from hypothesis import strategies as st
from media_rows import media_row

from harvester.config import OutputSettings
from harvester.lake import checkpoint as checkpoint_module
from harvester.lake.checkpoint import (
    Checkpoint,
    JobSpec,
    Unit,
    done_media,
    encode_manifest,
    start_job,
)
from harvester.lake.fs import Lake, open_lake
from harvester.lake.idset import IdSet
from harvester.lake.settle import settle
from harvester.lake.sink import ParquetSink
from harvester.models import Dataset, Rows

CLOCK = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = date(2026, 3, 1)
FETCHED = datetime(2026, 3, 1, tzinfo=UTC)
ACCOUNT = "1784"


def spec(*accounts: str) -> JobSpec:
    return JobSpec("backfill", accounts or (ACCOUNT,), "v25.0", None, None, ())


def begin(lake: Lake, run_id: str, job: JobSpec) -> tuple[ParquetSink, Checkpoint]:
    state = start_job(lake, job, run_id, clock=CLOCK, snapshot_date=DAY, windows=dict)
    settings = OutputSettings(lake.root, row_group_rows=10)
    sink = ParquetSink(lake, run_id=run_id, snapshot_date=DAY, settings=settings)
    return sink, Checkpoint(lake, state, run_id, every_seconds=3600)


def media_unit(media_id: str, run_id: str) -> Unit:
    media = media_row(
        ACCOUNT, media_id, None, "IMAGE", "FEED", None, None, fetched_at=FETCHED, run_id=run_id
    )
    return Unit("media", (media_id,), [Rows(Dataset.MEDIA, [media])])


def error_rows(run_id: str, *object_ids: str) -> Rows:
    rows = [(ACCOUNT, i, "insights", 500, 1, None, "x", None, FETCHED, run_id) for i in object_ids]
    return Rows(Dataset.ERRORS, rows)


def column(lake: Lake, dataset: Dataset, name: str) -> list[str]:
    folder = lake.full(dataset.value)
    table = pads.dataset(folder, filesystem=lake.fs, format="parquet", partitioning="hive")
    return sorted(table.to_table().column(name).to_pylist())


def test_a_run_remembers_only_the_media_its_job_committed_before_it(tmp_path: Path) -> None:
    lake = open_lake(str(tmp_path))
    ids = [str(17841400000000000 + i) for i in range(5)]
    sink, first = begin(lake, "20260301T120000Z-aaaaaa", spec())
    first.write(sink, [media_unit(i, "a") for i in ids[:3]])
    first.commit(sink)
    # This run's own commits stay on disk only: the listing never offers them again this run.
    assert first.state.media == set()
    first.write(sink, [media_unit(ids[3], "a")])
    sink.commit_epoch()  # ... and the run dies before this epoch's manifest

    sink, second = begin(lake, "20260301T120500Z-bbbbbb", spec())
    assert second.state.resumed
    assert isinstance(second.state.media, IdSet)
    assert second.state.media == set(ids[:3])
    second.write(sink, [media_unit(i, "b") for i in ids[3:]])
    second.commit(sink)
    assert second.state.media == set(ids[:3])
    assert done_media(lake, second.state) == set(ids)
    manifests = sorted(tmp_path.glob("_state/jobs/*/*/epoch-20260301T120500Z-bbbbbb-*.json"))
    assert [orjson.loads(p.read_bytes())["media"] for p in manifests] == [ids[3:]]
    sink.close()
    second.finish()
    settle(lake)
    assert column(lake, Dataset.MEDIA, "media_id") == ids


def test_settling_supersedes_the_errors_of_media_and_accounts_the_job_completed(
    tmp_path: Path,
) -> None:
    lake = open_lake(str(tmp_path))
    sink, old = begin(lake, "20260301T120000Z-aaaaaa", spec())
    failed = Unit("account", (ACCOUNT,), [error_rows("a", "m1", "m2", ACCOUNT, "other")])
    old.write(sink, [media_unit("m1", "a"), failed])
    old.commit(sink)
    sink.close()
    old.finish()
    settle(lake)

    # A later job of the same date completes m1 over two runs, m2 and the account.
    later = spec(ACCOUNT, "9999")
    sink, first = begin(lake, "20260301T130000Z-bbbbbb", later)
    first.write(sink, [media_unit("m1", "b")])
    first.commit(sink)
    sink, second = begin(lake, "20260301T130500Z-cccccc", later)
    second.write(sink, [media_unit("m2", "c"), Unit("account", (ACCOUNT,), [])])
    second.commit(sink)
    sink.close()
    second.finish()
    settle(lake)

    assert column(lake, Dataset.ERRORS, "object_id") == ["other"]
    assert column(lake, Dataset.MEDIA, "media_id") == ["m1", "m2"]
    assert column(lake, Dataset.MEDIA, "run_id") == ["b", "c"]


@given(
    st.dictionaries(
        st.sampled_from(["accounts", "files", "other", "run_id", "a", "mediaz", "z"]),
        st.recursive(
            st.none() | st.integers(-(2**63), 2**63 - 1) | st.text(), lambda inner: st.lists(inner)
        ),
    ),
    st.lists(st.text()),
    st.integers(1, 4),
)
def test_a_manifest_encoded_in_chunks_is_what_put_json_writes(
    manifest: dict[str, object], media: list[str], chunk: int
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(checkpoint_module, "MANIFEST_CHUNK_IDS", chunk)
        encoded = encode_manifest(manifest, iter(media))
    assert encoded == orjson.dumps({**manifest, "media": media}, option=orjson.OPT_SORT_KEYS)
