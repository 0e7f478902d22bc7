"""The lake lock's protocol on local disk and on a real S3-compatible server (moto on loopback):
acquire, refuse naming the holder, release, take over a dead holder's claim, contenders racing in
threads, a heartbeat that outlives the expiry, a lost lock that stops commits.

A dead holder is what a SIGKILL leaves: its claim object, never refreshed again (written here as
such; tests/harvest/test_lake_lock.py stops real processes).
"""

from __future__ import annotations

import logging
import math
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import pytest
from media_rows import media_row
from s3_server import make_bucket, moto_endpoint  # noqa: F401  (a fixture)

from harvester.config import OutputSettings
from harvester.lake import layout
from harvester.lake.checkpoint import Checkpoint, JobSpec, JobState, Unit, start_job
from harvester.lake.fs import Lake, open_lake
from harvester.lake.lock import (
    HEARTBEATS_PER_STALE,
    OBJECT_STORE_MTIME_SLACK,
    LakeLock,
    LakeLocked,
    LockLost,
    holding,
    machine_id,
)
from harvester.lake.sink import ParquetSink
from harvester.models import Dataset, Rows

pytestmark = pytest.mark.timeout(60)

DEAD_RUN = "20260301T100000Z-dead00"


@pytest.fixture(params=["local", "s3"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Lake:
    """A lake on disk, or in a bucket of its own on the moto server."""
    if request.param == "s3":
        endpoint = request.getfixturevalue("moto_endpoint")
        make_bucket(endpoint, bucket := f"lock-{abs(hash(request.node.name)) % 10**8}")
        return open_lake(f"s3://{bucket}/lake", s3_endpoint=endpoint)
    return open_lake(str(tmp_path / "lake"))


@pytest.fixture
def warnings_logged() -> Iterator[list[str]]:
    """What the harvester logs at WARNING and above, straight from its logger (the CLI stops it
    propagating to the root, where caplog listens)."""
    handler = _Messages()
    messages = handler.messages
    logger = logging.getLogger("harvester")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


class _Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def stale_for(lake: Lake) -> float:
    """Small expiries: S3 keeps whole-second mtimes, local disk nanoseconds. A second on disk:
    a busy test machine can stall the heartbeat thread for most of one."""
    return 2.0 if lake.object_store else 1.0


def new_lock(lake: Lake, run_id: str, stale: float = 30.0, command: str = "run") -> LakeLock:
    return LakeLock(lake, run_id=run_id, command=command, stale_seconds=stale)


def claims(lake: Lake) -> list[str]:
    names = [layout.claim_name(i.base_name) for i in lake.listdir(layout.LOCK)]
    return [n for n in names if n is not None]


def until(condition: Callable[[], bool]) -> None:
    """Poll until `condition()` holds (the per-test timeout bounds it)."""
    while not condition():
        time.sleep(0.01)


def test_a_second_writer_is_refused_with_the_holder_named_until_the_first_releases(
    lake: Lake,
) -> None:
    first = new_lock(lake, "20260301T120000Z-aaaaaa")
    first.acquire()
    assert first.held and not first.lost
    second = new_lock(lake, "20260301T120001Z-bbbbbb", command="compact")
    with pytest.raises(LakeLocked) as refused:
        second.acquire()
    message = str(refused.value)
    assert "\n" not in message
    holder = refused.value.holder
    assert (holder.run_id, holder.command, holder.held) == ("20260301T120000Z-aaaaaa", "run", True)
    for part in ("run 20260301T120000Z-aaaaaa", "(run on ", f"pid {holder.pid}", "since "):
        assert part in message
    assert "last heartbeat " in message and lake.root in message
    assert len(claims(lake)) == 1  # the refused one took its claim back
    first.release()
    assert claims(lake) == []
    second.acquire()
    assert second.held
    second.release()
    assert claims(lake) == []


def test_a_dead_holders_claim_expires_and_the_takeover_is_logged(
    lake: Lake, warnings_logged: list[str]
) -> None:
    stale = stale_for(lake)
    dead = {
        "run_id": DEAD_RUN,
        "command": "run",
        "host": "gone",
        "pid": 4242,
        "started_at": "2026-03-01T10:00:00+00:00",
        "heartbeat": "2026-03-01T10:05:00+00:00",
        "stale_seconds": stale,
        "held": True,
    }
    lake.put(layout.lock_claim(f"{DEAD_RUN}.00000000"), orjson.dumps(dead))
    taker = new_lock(lake, "20260301T120000Z-cccccc")
    taker.acquire(wait=30)  # refused at first: the claim is fresh; then it expires
    try:
        assert taker.held and taker.statistics().takeovers == 1
        assert claims(lake) == [taker.claimant]
        took = [m for m in warnings_logged if "took over" in m]
        assert len(took) == 1
        assert DEAD_RUN in took[0] and "last heartbeat 2026-03-01T10:05:00+00:00" in took[0]
        assert sum("waiting up to 30 s" in m for m in warnings_logged) == 1
    finally:
        taker.release()


def test_a_claim_whose_process_is_gone_from_this_machine_is_taken_over_at_once(
    lake: Lake, warnings_logged: list[str]
) -> None:
    machine = machine_id()
    if machine is None:
        pytest.skip("no /proc: a dead holder's claim only expires")
    pid = _pid_of_ended_process()
    dead = {"run_id": DEAD_RUN, "command": "run", "host": "here", "pid": pid, "held": True}
    dead |= {"started_at": "?", "heartbeat": "?", "stale_seconds": 3600, "machine": machine}
    lake.put(layout.lock_claim(f"{DEAD_RUN}.00000000"), orjson.dumps(dead))
    taker = new_lock(lake, "20260301T120000Z-cccccc")
    taker.acquire()  # no wait: the holder is known dead
    taker.release()
    [took] = [m for m in warnings_logged if "took over" in m]
    assert DEAD_RUN in took and f"its process {pid} on this machine is gone" in took
    # Another machine's claim with the same pid only expires.
    lake.put(layout.lock_claim(f"{DEAD_RUN}.00000000"), orjson.dumps(dead | {"machine": "x"}))
    with pytest.raises(LakeLocked):
        new_lock(lake, "20260301T120001Z-dddddd").acquire()


def _pid_of_ended_process() -> int:
    """The pid of a process that ended and was reaped (what a SIGKILLed run leaves)."""
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def test_contenders_racing_in_threads_never_both_hold(lake: Lake) -> None:
    rounds, contenders = (6, 3) if lake.object_store else (25, 4)
    inside: list[str] = []
    overlaps: list[list[str]] = []
    guard = threading.Lock()
    wins = []
    for n in range(rounds):
        start = threading.Barrier(contenders)

        def contend(i: int, n: int = n, start: threading.Barrier = start) -> None:
            lock = new_lock(lake, f"20260301T120000Z-r{n:02d}c{i}")
            start.wait()
            try:
                lock.acquire()
            except LakeLocked:
                return
            try:
                with guard:
                    inside.append(lock.claimant)
                    if len(inside) > 1:
                        overlaps.append(list(inside))
                # Work while holding: the others' attempts run meanwhile.
                lake.put(f"work/{n}-{i}.json", b"{}")
                with guard:
                    inside.remove(lock.claimant)
                    wins.append(n)
            finally:
                lock.release()

        threads = [threading.Thread(target=contend, args=(i,)) for i in range(contenders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert claims(lake) == []
    assert overlaps == []
    assert set(wins) == set(range(rounds))  # every round had a holder


def test_the_heartbeat_keeps_a_claim_alive_beyond_its_expiry(lake: Lake) -> None:
    stale = stale_for(lake)
    holder = new_lock(lake, "20260301T120000Z-dddddd", stale=stale)
    holder.acquire()
    try:
        # Past the expiry (and an object store's slack) by the store's clock, in heartbeats a
        # quarter of it apart: unrefreshed, the claim would be dead by now.
        expiry = stale + (OBJECT_STORE_MTIME_SLACK if lake.object_store else 0.0)
        beats = math.ceil(expiry / (stale / HEARTBEATS_PER_STALE)) + 1
        until(lambda: holder.lost or holder.statistics().heartbeats >= beats)
        assert not holder.lost
        with pytest.raises(LakeLocked):
            new_lock(lake, "20260301T120001Z-eeeeee", stale=stale).acquire()
        assert holder.held and not holder.lost
        holder.check()
    finally:
        holder.release()
    assert claims(lake) == []


def held_job(lake: Lake, run: str) -> tuple[LakeLock, JobState]:
    """A lock held by `run` and the job it started, as a run has them before its first write."""
    holder = new_lock(lake, run, stale=stale_for(lake))
    holder.acquire()
    spec = JobSpec("backfill", ("1784",), "v25.0", None, None, (("stories", True),))
    clock = datetime(2026, 3, 1, 12, tzinfo=UTC)
    state = start_job(lake, spec, run, clock=clock, snapshot_date=date(2026, 3, 1), windows=dict)
    return holder, state


def test_a_lost_lock_stops_commits(lake: Lake) -> None:
    run = "20260301T120000Z-ffffff"
    holder, state = held_job(lake, run)
    settings = OutputSettings(lake.root)
    sink = ParquetSink(lake, run_id=run, snapshot_date=state.snapshot_date, settings=settings)
    checkpoint = Checkpoint(lake, state, run, every_seconds=3600, guard=holder.check)
    checkpoint.write(sink, [media_unit("m1")])
    checkpoint.commit(sink)  # held: committed
    assert len(state.files) == 1
    checkpoint.write(sink, [media_unit("m2")])
    # What a takeover does to the claim of a holder that stalled past its expiry.
    lake.delete(lake.full(layout.lock_claim(holder.claimant)))
    try:
        until(lambda: holder.lost)
        assert holder.statistics().lost
        with pytest.raises(LockLost, match="lost the lake lock"):
            checkpoint.commit(sink)
        with pytest.raises(LockLost):
            checkpoint.finish()
    finally:
        holder.release()
    # Nothing of the refused epoch was published: one manifest, its two files, no done object.
    folder = lake.relative(lake.full(state.folder))
    names = sorted(i.base_name for i in lake.listdir(folder))
    assert [n for n in names if layout.is_epoch(n)] == [f"epoch-{run}-000000.json"]
    assert "done.json" not in names
    parquet = [i for d in Dataset for i in lake.files(d.value) if i.base_name.endswith(".parquet")]
    assert sorted(lake.relative(i.path) for i in parquet) == sorted(state.files)
    assert claims(lake) == []


@pytest.mark.anyio
async def test_holding_releases_when_the_block_fails(lake: Lake) -> None:
    lock = new_lock(lake, "20260301T120000Z-gggggg")
    with pytest.raises(RuntimeError, match="boom"):
        async with holding(lock):
            assert claims(lake) == [lock.claimant]
            raise RuntimeError("boom")
    assert claims(lake) == [] and not lock.held
    async with holding(None):  # a shard: its driver holds the lock
        assert claims(lake) == []


def test_a_lost_lock_stops_the_parts_the_sink_rotates_between_commits(lake: Lake) -> None:
    """With one-row row groups and a tiny target_file_mb every write rotates its part, published
    at once, before any epoch: a holder that lost the lock publishes none of them more."""
    run = "20260301T120000Z-eeeeee"
    holder, state = held_job(lake, run)
    settings = OutputSettings(lake.root, row_group_rows=1, target_file_mb=1e-6)
    sink = ParquetSink(
        lake, run_id=run, snapshot_date=state.snapshot_date, settings=settings, guard=holder.check
    )
    checkpoint = Checkpoint(lake, state, run, every_seconds=3600, guard=holder.check)

    def parts() -> list[str]:
        return sorted(i.base_name for i in lake.files("media") if i.base_name.endswith(".parquet"))

    checkpoint.write(sink, [media_unit("m1")])
    published = parts()
    assert len(published) == 1  # rotated and published while held, no epoch yet
    lake.delete(lake.full(layout.lock_claim(holder.claimant)))  # a takeover
    try:
        until(lambda: holder.lost)
        with pytest.raises(LockLost, match="lost the lake lock"):
            checkpoint.write(sink, [media_unit("m2")])
    finally:
        holder.release()
    sink.abort()
    assert parts() == published
    assert not [i for i in lake.files("media") if i.base_name.endswith(".tmp")]


def media_unit(media_id: str) -> Unit:
    """A media's one `media` row, as a unit of work."""
    fetched = datetime(2026, 3, 1, tzinfo=UTC)
    row = media_row(
        "1784", media_id, None, "IMAGE", "FEED", None, None, fetched_at=fetched, run_id="r"
    )
    return Unit("media", (media_id,), [Rows(Dataset.MEDIA, [row])])
