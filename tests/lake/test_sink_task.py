"""The sink task closes an epoch on time, also while no unit arrives (a long account-insights
phase sends nothing for minutes).

Time is the checkpoint's injected monotonic clock, moved by the test; what is asserted is what the
lake holds before and after the clock says the epoch is due, never how long anything took.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import orjson
import pytest

from harvester.config import OutputSettings
from harvester.lake.checkpoint import Checkpoint, SinkTask, Unit, start_job
from harvester.lake.fs import Lake, open_lake
from harvester.lake.sink import ParquetSink
from harvester.models import Dataset, Rows

from .test_checkpoint import CLOCK, DAY, SPEC, media_unit

pytestmark = pytest.mark.anyio

PIECE = "account_insights:1784:2026-02-01T00:00:00+00:00:2026-03-01T00:00:00+00:00"


class Clock:
    """A monotonic clock that stands still until the test moves it; counts its readings, which
    tell the test that the sink task went round its loop."""

    def __init__(self) -> None:
        self.now = 0.0
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now


def manifests(lake: Lake) -> list[dict[str, object]]:
    return [orjson.loads(p.read_bytes()) for p in Path(lake.root).glob("_state/jobs/*/*/epoch-*")]


def piece_unit(complete: bool) -> Unit:
    fetched = CLOCK
    row = ("1784", "reach", "day", CLOCK, None, None, 7, None, "v25.0", fetched, "r")
    return Unit(
        "piece",
        (PIECE,),
        [Rows(Dataset.ACCOUNT_INSIGHTS, [row])],
        {"complete": complete},
    )


async def rounds(clock: Clock, n: int) -> None:
    """Wait until the sink task has read the clock `n` more times."""
    target = clock.reads + n
    with anyio.fail_after(30):
        while clock.reads < target:  # noqa: ASYNC110 (read from the sink's worker thread too)
            await anyio.sleep(0.001)


async def test_an_epoch_closes_on_time_while_no_unit_arrives(tmp_path: Path) -> None:
    lake = open_lake(str(tmp_path / "lake"))
    run_id = "20260301T120000Z-aaaaaa"
    state = start_job(lake, SPEC, run_id, clock=CLOCK, snapshot_date=DAY, windows=dict)
    sink = ParquetSink(lake, run_id=run_id, snapshot_date=DAY, settings=OutputSettings(lake.root))
    clock = Clock()
    # The clock stands still: the due time is checked again every 10 ms of real time.
    checkpoint = Checkpoint(lake, state, run_id, every_seconds=0.01, monotonic=clock)
    task = SinkTask(sink, checkpoint)
    send, receive = anyio.create_memory_object_stream[Unit](4)
    async with anyio.create_task_group() as tg:
        tg.start_soon(task.run, receive)
        await send.send(media_unit("m1"))
        await send.send(piece_unit(complete=False))
        # Several rounds of the loop with the units in: written, nothing due, nothing committed.
        await rounds(clock, 10)
        assert manifests(lake) == []
        # Due now; no unit arrives, the stream stays open, and the epoch is committed.
        clock.now = 1.0
        with anyio.fail_after(30):
            while not manifests(lake):  # noqa: ASYNC110 (the lake is polled, as a reader would)
                await anyio.sleep(0.001)
        [manifest] = manifests(lake)
        assert manifest["media"] == ["m1"]
        assert manifest["other"] == [PIECE + "#incomplete"]
        datasets = sorted(dataset for _, dataset, _ in manifest["files"])  # type: ignore[attr-defined]
        assert datasets == ["account_insights", "media", "media_insights"]
        for path, _, rows in manifest["files"]:  # type: ignore[attr-defined]
            assert (Path(lake.root) / path).is_file() and rows == 1
        await send.aclose()
    task.close()
    # The empty last epoch writes no manifest; the piece is done, and known as incomplete.
    assert len(manifests(lake)) == 1
    resumed = start_job(lake, SPEC, "20260301T120500Z-bbbbbb", clock=CLOCK, snapshot_date=DAY,
                        windows=dict)  # fmt: skip
    assert resumed.outcome(PIECE) is False
    assert resumed.outcome(PIECE.replace("02-01", "01-01")) is None
    assert resumed.media == {"m1"}


async def test_a_complete_piece_is_recorded_by_its_id(tmp_path: Path) -> None:
    lake = open_lake(str(tmp_path / "lake"))
    run_id = "20260301T120000Z-aaaaaa"
    state = start_job(lake, SPEC, run_id, clock=CLOCK, snapshot_date=DAY, windows=dict)
    sink = ParquetSink(lake, run_id=run_id, snapshot_date=DAY, settings=OutputSettings(lake.root))
    checkpoint = Checkpoint(lake, state, run_id, every_seconds=3600)
    task = SinkTask(sink, checkpoint)
    send, receive = anyio.create_memory_object_stream[Unit](4)
    async with anyio.create_task_group() as tg:
        tg.start_soon(task.run, receive)
        async with send:
            await send.send(piece_unit(complete=True))
    task.close()
    assert [m["other"] for m in manifests(lake)] == [[PIECE]]
    assert state.outcome(PIECE) is True
