"""One writer per lake: a lock of claim objects that works alike on local disk and on S3.

Neither pyarrow's S3 filesystem nor a plain folder offers a compare-and-swap, so the lock is built
from the three operations both do linearizably (S3 since December 2020; local disk always): a
whole-object PUT, a LIST and a DELETE. Every contender writes a claim of its own,
`_state/lock/<run>.<token>.json` (`layout.lock_claim`: run id, command, host, pid, when it started,
its last heartbeat, its expiry, whether it holds), then lists the lock folder:

- no other live claim: it holds the lock (and rewrites its claim saying so);
- another live claim: it deletes its own and backs off with jitter; when that claim is a holder's,
  it refuses (`LakeLocked`, naming the holder), or waits up to `wait` seconds and tries again.

Mutual exclusion: if A holds, A's PUT came before A's LIST, and B's claim was not in that LIST, so
B's PUT came after it; B's own LIST, later still, shows A's claim (present from A's PUT until A's
release). Two contenders that see each other both back off, never both go on. The one who
succeeds has its claim present throughout: a rewrite replaces the object whole (a PUT, a rename).

Staleness is judged by the store's clock alone, never a host's: a claim is dead when its mtime is
older than the mtime of the judge's freshly written claim (both from one listing, so at one
resolution) by more than the *claim's own* `stale_seconds` (plus a second on an object store,
whose mtimes are whole seconds: without it a claim could be judged dead up to a second early).
Each claim states its expiry, so a `compact` with the default and a run configured otherwise
agree on when the run is dead. A dead claim is deleted and the takeover logged with the dead
holder's run id and last heartbeat.

A holder refreshes its claim every `stale/4` from a thread (the event loop may be busy: the sink
writes in threads, compaction is synchronous). A holder stalled past its expiry may have been
taken over, and it finds out itself: a heartbeat whose claim is gone, or whose new mtime is more
than `stale` (plus the same slack) after the previous one (the store's clock again), marks the
lock `lost`. That test
catches every takeover: a judge that saw the old mtime listed before the refresh, so the refresh
lands more than `stale` after it. Between heartbeats, `check()` (the hook `Checkpoint` calls
before every commit) also refuses when the last confirmed refresh began more than `stale/2` ago
by the local monotonic clock: no one can have judged the claim dead before `stale` elapsed since
it, so what is committed in the remaining half lands while the lock is still this holder's.
The sink checks too before it publishes a part it rotates at `target_file_mb` between two
commits. What stays unguarded: a write that takes longer than `stale/2` to land, clocks that run
at visibly different rates (both far beyond the 120 s default), and the shards of a Ray run (in
processes of their own: their driver's lock covers them, and its check guards only the driver's
settling).

A process that dies leaves its claim, which expires: nothing ever needs clearing by hand. So a
rerun after a crash on the same machine need not wait for that, a claim also names its machine
(host name, boot id, pid namespace: `machine_id`); a contender on the same machine whose holder's
pid is gone takes the claim over at once. Where the machine cannot be told apart (no `/proc`), or
the pid was reused, the claim only expires: the shortcut errs towards waiting, never towards two
writers.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple

import anyio
import orjson

from harvester.lake import layout
from harvester.lake.fs import Lake

__all__ = [
    "Claim",
    "LakeLock",
    "LakeLocked",
    "LockError",
    "LockLost",
    "LockStatistics",
    "holding",
    "holding_sync",
    "machine_id",
]

log = logging.getLogger("harvester")

# A holder refreshes its claim this many times per `stale_seconds`: three missed beats in a row
# are survivable, the fourth is a stall.
HEARTBEATS_PER_STALE = 4
# Backoff between attempts: the first pause, and its ceiling (waiting for a holder to finish).
BACKOFF_FIRST_SECONDS = 0.05
BACKOFF_MAX_SECONDS = 2.0
# S3 keeps Last-Modified in whole seconds: a judge waits this much longer before calling a claim
# on an object store dead, so truncation never makes one expire early.
OBJECT_STORE_MTIME_SLACK = 1.0


class LockError(Exception):
    """The lake is another writer's: refused (`LakeLocked`) or taken over (`LockLost`)."""


class LakeLocked(LockError):
    """Another writer holds the lake's lock (and did not release it within the wait)."""

    def __init__(self, root: str, holder: Claim) -> None:
        self.holder = holder
        super().__init__(f"the lake {root} is locked by {holder.describe()}")


class LockLost(LockError):
    """This writer's lock was taken over (it stalled past its claim's expiry): stop committing."""


@dataclass(frozen=True)
class Claim:
    """A claim object's content, and its mtime by the store's clock (seconds, from a listing)."""

    name: str
    run_id: str
    command: str
    host: str
    pid: int
    started_at: str
    heartbeat: str
    stale_seconds: float
    held: bool
    machine: str | None = None
    mtime: float | None = None

    def describe(self) -> str:
        role = "" if self.held else " (acquiring)"
        return (
            f"run {self.run_id}{role} ({self.command} on {self.host}, pid {self.pid}) since "
            f"{self.started_at}, last heartbeat {self.heartbeat}; its claim expires "
            f"{self.stale_seconds:g} s after its last heartbeat"
        )

    def content(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "command": self.command,
            "host": self.host,
            "pid": self.pid,
            "started_at": self.started_at,
            "heartbeat": self.heartbeat,
            "stale_seconds": self.stale_seconds,
            "held": self.held,
            "machine": self.machine,
        }


class LockStatistics(NamedTuple):
    attempts: int
    heartbeats: int
    takeovers: int
    held: bool
    lost: bool


class LakeLock:
    """One writer's lock on one lake: `acquire` (or `holding`), `check` before each commit,
    `release` at the end. A new instance per run; not reusable after `release`."""

    def __init__(
        self,
        lake: Lake,
        *,
        run_id: str,
        command: str,
        stale_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if stale_seconds <= 0:
            raise ValueError(f"stale_seconds must be > 0, got {stale_seconds}")
        self._lake = lake
        self._stale = stale_seconds
        self._monotonic = monotonic
        now = _now()
        self._claim = Claim(
            name=f"{run_id}.{secrets.token_hex(4)}",
            run_id=run_id,
            command=command,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=now,
            heartbeat=now,
            stale_seconds=stale_seconds,
            held=False,
            machine=machine_id(),
        )
        self._path = layout.lock_claim(self._claim.name)
        self._held = False
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._beater: threading.Thread | None = None
        self._last_mtime: float | None = None  # our claim's mtime at the last confirmed refresh
        self._confirmed_at = 0.0  # monotonic time the last confirmed refresh began
        self._attempts = self._heartbeats = self._takeovers = 0

    # ---- acquiring ------------------------------------------------------------------------

    def acquire(self, wait: float = 0.0) -> None:
        """Take the lock, waiting up to `wait` seconds for a holder to go; else `LakeLocked`."""
        rounds = self._rounds(wait)
        while (delay := next(rounds, None)) is not None:
            time.sleep(delay)

    async def acquire_async(self, wait: float = 0.0) -> None:
        """`acquire` without blocking the event loop: each attempt runs in a worker thread."""
        rounds = self._rounds(wait)
        while True:
            # Shielded: an attempt that won must return here, so the caller's cleanup releases it.
            with anyio.CancelScope(shield=True):
                delay = await anyio.to_thread.run_sync(next, rounds, None)
            if delay is None:
                return
            await anyio.sleep(delay)

    def _rounds(self, wait: float) -> Iterator[float]:
        """Attempt until the lock is held (the iterator ends); between attempts, yield how long to
        pause. Raise `LakeLocked` once a holder is still there after `wait` seconds, or when
        contenders alone kept it from us for as long as a claim lives (`stale`)."""
        start = self._monotonic()
        pause = BACKOFF_FIRST_SECONDS
        waiting_logged = False
        while True:
            blocker = self._attempt()
            if blocker is None:
                return
            elapsed = self._monotonic() - start
            limit = wait if blocker.held else max(wait, self._stale)
            if elapsed >= limit:
                raise LakeLocked(self._lake.root, blocker)
            if blocker.held and not waiting_logged:
                log.warning("waiting up to %g s for the lake lock: %s", wait, blocker.describe())
                waiting_logged = True
            # Full jitter: contenders that collided pick different pauses and stop colliding.
            yield min(random.uniform(0, pause), max(0.0, limit - elapsed))
            pause = min(pause * 2, BACKOFF_MAX_SECONDS)

    def _attempt(self) -> Claim | None:
        """One round: claim, list, decide. None: we hold the lock; else the claim in the way."""
        self._attempts += 1
        began = self._monotonic()
        self._write(held=False)
        mine, others = self._survey()
        if mine is None or mine.mtime is None:
            # Our claim cannot vanish between our PUT and our LIST unless someone deleted it by
            # hand; without its mtime nothing can be judged. Try again.
            self._delete_own()
            return replace(self._claim, run_id="(unknown)", held=False)
        slack = self._slack()
        live = []
        for other in others:
            if other.mtime is not None and mine.mtime - other.mtime > other.stale_seconds + slack:
                self._take_over(other, f"{mine.mtime - other.mtime:.1f} s before ours")
            elif self._gone(other):
                self._take_over(other, f"and its process {other.pid} on this machine is gone")
            else:
                live.append(other)
        if live:
            self._delete_own()
            return next((c for c in live if c.held), live[0])
        self._held = True
        self._last_mtime = mine.mtime
        self._confirmed_at = began
        self._write(held=True)
        self._beater = threading.Thread(
            target=self._beat_loop, name=f"lake-lock-{self._claim.run_id}", daemon=True
        )
        self._beater.start()
        log.debug("holding the lake lock %s", self._path)
        return None

    def _slack(self) -> float:
        return OBJECT_STORE_MTIME_SLACK if self._lake.object_store else 0.0

    def _gone(self, other: Claim) -> bool:
        """Whether a claim is of this machine and its process has ended (a SIGKILL, a crash)."""
        same = self._claim.machine is not None and other.machine == self._claim.machine
        return same and not _alive(other.pid)

    def _take_over(self, dead: Claim, why: str) -> None:
        self._lake.delete(self._lake.full(layout.lock_claim(dead.name)))
        self._takeovers += 1
        log.warning(
            "took over the lake lock of run %s (%s on %s, pid %d), a dead writer's: last "
            "heartbeat %s, %s (its claim expires after %g s)",
            dead.run_id,
            dead.command,
            dead.host,
            dead.pid,
            dead.heartbeat,
            why,
            dead.stale_seconds,
        )

    # ---- holding --------------------------------------------------------------------------

    @property
    def claimant(self) -> str:
        """The name of this lock's claim in the lock folder (`layout.lock_claim`)."""
        return self._claim.name

    @property
    def held(self) -> bool:
        return self._held and not self.lost

    @property
    def lost(self) -> bool:
        """Whether the lock was taken over, or its last confirmed refresh is too old to trust."""
        if self._lost.is_set():
            return True
        return self._held and self._monotonic() - self._confirmed_at > self._stale / 2

    def check(self) -> None:
        """Raise `LockLost` unless the lock is still ours: call before every commit."""
        if not self._held:
            raise LockLost(f"run {self._claim.run_id} does not hold the lake lock")
        if self.lost:
            raise LockLost(
                f"run {self._claim.run_id} lost the lake lock of {self._lake.root} (it stalled "
                f"past its {self._stale:g} s expiry, and another writer may have taken over); "
                "it commits nothing more, and the same command resumes the job"
            )

    def _beat_loop(self) -> None:
        interval = self._stale / HEARTBEATS_PER_STALE
        while not self._stop.wait(interval):
            try:
                self._beat()
            except Exception as error:  # a flaky store: try again next beat; check() sees it
                log.warning("lake lock heartbeat failed (%s: %s)", type(error).__name__, error)
            if self._lost.is_set():
                return

    def _beat(self) -> None:
        """Refresh our claim and confirm by the store's clock that no one could take it over."""
        began = self._monotonic()
        mine, _ = self._survey(read_others=False)
        if mine is None:
            self._lose("its claim is gone (another writer judged it dead)")
            return
        self._write(held=True)
        mine, _ = self._survey(read_others=False)
        if mine is None or mine.mtime is None or self._last_mtime is None:
            self._lose("its claim is gone (another writer judged it dead)")
            return
        # The judges' own threshold: every takeover is caught, and S3's whole-second mtimes
        # never make two beats a quarter of `stale` apart look further apart than that.
        if mine.mtime - self._last_mtime > self._stale + self._slack():
            self._lose(f"{mine.mtime - self._last_mtime:.1f} s passed between two heartbeats")
            return
        self._last_mtime = mine.mtime
        self._confirmed_at = began
        self._heartbeats += 1

    def _lose(self, why: str) -> None:
        self._lost.set()
        self._delete_own()  # it may be a refresh that brought it back after a takeover
        log.error("run %s lost the lake lock: %s", self._claim.run_id, why)

    def release(self) -> None:
        """Stop the heartbeat and delete our claim. Idempotent; safe when never acquired."""
        self._stop.set()
        if self._beater is not None:
            self._beater.join()
            self._beater = None
        if self._held:
            self._delete_own()
            self._held = False

    def statistics(self) -> LockStatistics:
        return LockStatistics(
            self._attempts, self._heartbeats, self._takeovers, self.held, self._lost.is_set()
        )

    # ---- claim objects --------------------------------------------------------------------

    def _write(self, *, held: bool) -> None:
        self._claim = replace(self._claim, heartbeat=_now(), held=held)
        self._lake.put(self._path, orjson.dumps(self._claim.content()))

    def _delete_own(self) -> None:
        self._lake.delete(self._lake.full(self._path))

    def _survey(self, *, read_others: bool = True) -> tuple[Claim | None, list[Claim]]:
        """One LIST of the lock folder: our claim (with its mtime) and, when asked, the others'
        (read after the listing, with the listing's mtimes)."""
        mine = None
        others = []
        for info in self._lake.listdir(layout.LOCK):
            name = layout.claim_name(info.base_name)
            if name is None:
                continue
            mtime = None if info.mtime is None else info.mtime.timestamp()
            if name == self._claim.name:
                mine = replace(self._claim, mtime=mtime)
            elif read_others and (other := self._read(name, mtime)) is not None:
                others.append(other)
        return mine, others

    def _read(self, name: str, mtime: float | None) -> Claim | None:
        """Another claim, or None when it went between our LIST and this read (released)."""
        try:
            content = self._lake.get_json(layout.lock_claim(name))
        except (ValueError, OSError):
            content = {}  # unreadable: judged by our own expiry, named as unknown
        if content is None:
            return None
        if not isinstance(content, dict):
            content = {}
        return Claim(
            name=name,
            run_id=str(content.get("run_id", "(unknown)")),
            command=str(content.get("command", "?")),
            host=str(content.get("host", "?")),
            pid=int(content.get("pid", 0)),
            started_at=str(content.get("started_at", "?")),
            heartbeat=str(content.get("heartbeat", "?")),
            stale_seconds=float(content.get("stale_seconds", self._stale)),
            held=bool(content.get("held", True)),
            machine=content.get("machine") if isinstance(content.get("machine"), str) else None,
            mtime=mtime,
        )


@asynccontextmanager
async def holding(lock: LakeLock | None, *, wait: float = 0.0) -> AsyncIterator[None]:
    """Hold `lock` for the block (None: no lock, for a shard whose driver holds it); released
    also when the block fails or is cancelled."""
    if lock is None:
        yield
        return
    try:
        await lock.acquire_async(wait)
        yield
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(lock.release)


@contextmanager
def holding_sync(lock: LakeLock, *, wait: float = 0.0) -> Iterator[None]:
    """`holding` for synchronous callers (`harvester compact`)."""
    try:
        lock.acquire(wait)
        yield
    finally:
        lock.release()


def machine_id() -> str | None:
    """Who can see this process's pids: host name, boot id and pid namespace (Linux), else None.

    Two containers may share a host name (host networking) yet not their pids; the namespace
    tells them apart, and the boot id a host from itself before a reboot.
    """
    try:
        with open("/proc/sys/kernel/random/boot_id") as boot:
            boot_id = boot.read().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None
    return f"{socket.gethostname()}/{boot_id}/{namespace}"


def _alive(pid: int) -> bool:
    """Whether a pid of this machine belongs to a live process (a zombie is dead: it is only
    waiting for its parent to read its exit status)."""
    if pid <= 0:
        return True  # not a pid we can judge
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
