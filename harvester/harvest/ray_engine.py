"""`harvester run --engine ray`: a run as shards of accounts, each a Ray task running `run_harvest`.

    driver: settle the lake -> N shard tasks (retried when a worker dies) -> settle -> one report
    shard:  run_harvest(config restricted to its accounts) into the shared lake, app permits leased
            from the app gate actor, counters posted to the progress board actor

Accounts go to shards by a stable hash of their id, so a shard's accounts, and therefore its job
(`lake.checkpoint`: a job is decided by its accounts among other things), are the same every
time the run is started with the same shard count. A shard whose worker dies is retried by Ray and
its `run_harvest` resumes its job from the last manifest, deleting the dead attempt's uncommitted
parts; each attempt writes under a run id of its own, so its part names never meet the dead one's.
Per-account limits stay inside the shard that owns the account; the app's budget is one for all
(`graph.leases`). The shards work on the lake side by side, so none of them settles jobs or
recovers compactions: the driver does, before and after.

Only `harvester.cli` imports this module, and only for `--engine ray`: `import harvester` never
imports Ray.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import anyio
import orjson
import ray

from harvester.config import Config, ConfigError
from harvester.graph.batch import MAX_OPS
from harvester.graph.leases import AppBudget, BudgetStatistics, LeasedPermits, LeaseGrant
from harvester.harvest.pipeline import new_run_id, run_harvest
from harvester.harvest.report import RunCounters, RunReport
from harvester.lake import layout
from harvester.lake.checkpoint import Mode
from harvester.lake.compact import recover_compactions
from harvester.lake.doctor import heal
from harvester.lake.fs import Lake, open_output
from harvester.lake.lock import LakeLock, holding
from harvester.lake.settle import settle
from harvester.models import Account, Dataset, HarvestWindow

__all__ = ["ShardHook", "run_on_ray", "shard_of", "split_accounts"]

log = logging.getLogger("harvester")

DEFAULT_SHARDS = 4
# A shard whose worker process dies (OOM, node lost, a kill) is run again this many times.
SHARD_RETRIES = 3
# How often shards post their counters and the driver reads them: progress, not control.
PROGRESS_SECONDS = 1.0
# Permits per lease when the app is cool: enough for one full Graph batch, so a shard asks the
# gate about once per batch rather than once per call.
LEASE_SIZE = MAX_OPS

# Test hook, run beside a shard's harvest with (shard index, the attempt's run id).
ShardHook = Callable[[int, str], Coroutine[Any, Any, None]]


def shard_of(account_id: str, shards: int) -> int:
    """The shard of an account: stable across processes and Python versions (no `hash()`)."""
    digest = hashlib.sha256(account_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


def split_accounts(
    accounts: Sequence[Account], shards: int
) -> list[tuple[int, tuple[Account, ...]]]:
    """(shard index, its accounts in config order) for every shard that has any."""
    parts: list[list[Account]] = [[] for _ in range(shards)]
    for account in accounts:
        parts[shard_of(account.id, shards)].append(account)
    return [(index, tuple(part)) for index, part in enumerate(parts) if part]


class _AppGate:
    """The app rate gate actor: an `AppBudget` behind one mailbox (calls run one at a time)."""

    def __init__(self, calls_per_window: int | None, window: float, slow_down_at: float) -> None:
        self._budget = AppBudget(
            calls_per_window, window, lease_size=LEASE_SIZE, slow_down_at_pct=slow_down_at
        )

    def lease(self, want: int, returned: tuple[int, int] | None) -> LeaseGrant:
        return self._budget.lease(want, returned=returned)

    def observe(self, app_pct: float) -> None:
        self._budget.observe(app_pct)

    def block(self, seconds: float) -> None:
        self._budget.block(seconds)

    def statistics(self) -> BudgetStatistics:
        return self._budget.statistics()


class _ProgressBoard:
    """Counters of every shard attempt, as last posted; the driver reads their sums."""

    def __init__(self) -> None:
        self._latest: dict[int, str] = {}  # shard -> its current attempt's run id
        self._posted: dict[str, dict[str, Any]] = {}  # attempt run id -> counters

    def post(self, shard: int, attempt: str, counters: dict[str, Any]) -> None:
        self._latest[shard] = attempt
        self._posted[attempt] = counters

    def totals(self) -> dict[str, Any]:
        """Progress of the current attempts (a retry recounts what it resumed), and the requests
        of every attempt, dead ones included: those were made and charged."""
        current = [self._posted[attempt] for attempt in self._latest.values()]
        totals: dict[str, Any] = {
            key: sum(c[key] for c in current)
            for key in ("accounts_done", "accounts_failed", "media_listed", "media_done")
        }
        totals["insight_rows"] = sum(c["insight_rows"] for c in current)
        totals["error_rows"] = sum(c["error_rows"] for c in current)
        totals["requests"] = sum(c["requests"] for c in self._posted.values())
        return totals


@dataclass(frozen=True)
class _Shard:
    """One shard's orders, shipped to its task (the config carries its accounts' tokens)."""

    index: int
    config: Config
    window: HarvestWindow
    mode: Mode
    run_id: str
    clock: datetime
    snapshot_date: date
    gate: Any  # the app gate actor's handle
    board: Any  # the progress board actor's handle
    hook: ShardHook | None


def _run_shard(shard: _Shard) -> bytes:
    """The Ray task: one shard's harvest; returns its report (JSON)."""
    report: RunReport = anyio.run(_harvest_shard, shard)
    return report.to_json()


async def _harvest_shard(shard: _Shard) -> RunReport:
    # A fresh run id per attempt: a retried shard's parts must not reuse a dead attempt's names.
    attempt = f"{shard.run_id}-s{shard.index:03d}-{secrets.token_hex(2)}"
    gate = shard.gate

    async def lease(want: int, returned: tuple[int, int] | None) -> LeaseGrant:
        grant: LeaseGrant = await gate.lease.remote(want, returned)
        return grant

    permits = LeasedPermits(
        lease, lambda pct: gate.observe.remote(pct), lambda seconds: gate.block.remote(seconds)
    )
    counters = RunCounters()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_post_progress, shard, attempt, counters)
        if shard.hook is not None:
            tg.start_soon(shard.hook, shard.index, attempt)
        try:
            report = await run_harvest(
                shard.config,
                window=shard.window,
                counters=counters,
                run_id=attempt,
                mode=shard.mode,
                now=shard.clock,
                snapshot_date=shard.snapshot_date,
                shard=True,
                app_permits=permits,
            )
            await permits.release()
        finally:
            tg.cancel_scope.cancel()
    await shard.board.post.remote(shard.index, attempt, counters.snapshot())
    return report


async def _post_progress(shard: _Shard, attempt: str, counters: RunCounters) -> None:
    while True:
        await shard.board.post.remote(shard.index, attempt, counters.snapshot())
        await anyio.sleep(PROGRESS_SECONDS)


async def run_on_ray(
    config: Config,
    *,
    window: HarvestWindow | None = None,
    counters: RunCounters | None = None,
    run_id: str | None = None,
    mode: Mode = "backfill",
    now: datetime | None = None,
    snapshot_date: date | None = None,
    shards: int = DEFAULT_SHARDS,
    address: str | None = None,
    shard_hook: ShardHook | None = None,
    lock_wait: float = 0.0,
) -> RunReport:
    """`run_harvest` on many machines: the same lake, one report (`<output>/_runs/<run_id>.json`).

    Connects to the Ray cluster at `address` (None: `RAY_ADDRESS`, else a local Ray) unless Ray
    is already initialised. Every worker must reach `[output].path`: S3 or a shared filesystem.
    The driver holds the lake's lock (`lake.lock`) for the whole run, its shards none: it waits up
    to `lock_wait` seconds for another writer, then refuses with `LakeLocked`.
    """
    if config.discovery.token is not None:
        raise ConfigError(
            config.source, "[discovery]", "not supported with --engine ray; list the accounts"
        )
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    run_id = run_id or new_run_id(started)
    counters = counters or RunCounters()
    counters.accounts_total = len(config.accounts)
    clock = now or started
    lake = open_output(config.output)
    lock = LakeLock(
        lake,
        run_id=run_id,
        command="run --engine ray",
        stale_seconds=config.output.lock_stale_seconds,
    )
    async with holding(lock, wait=lock_wait):
        await anyio.to_thread.run_sync(_settle_lake, lake)
        connected = not ray.is_initialized()
        if connected:
            await anyio.to_thread.run_sync(lambda: ray.init(address=address))
        try:
            limits = config.limits
            per_window = None
            if limits.app_calls_per_hour is not None:
                per_window = max(
                    1, int(limits.app_calls_per_hour * limits.app_window_seconds / 3600)
                )
            # Actors hold no CPU, so they never keep a shard from starting. A lost gate fails the
            # shards' calls and so the run (resumable): a restarted one would have forgotten the
            # permits in the window.
            gate: Any = (
                ray.remote(_AppGate)
                .options(num_cpus=0)
                .remote(per_window, limits.app_window_seconds, limits.slow_down_at_pct)
            )
            board: Any = ray.remote(_ProgressBoard).options(num_cpus=0).remote()
            task = ray.remote(_run_shard).options(max_retries=SHARD_RETRIES)
            refs = [
                task.remote(
                    _Shard(
                        index,
                        # Competitors once, by the first shard, through its accounts.
                        replace(
                            config,
                            accounts=accounts,
                            competitors=config.competitors if index == 0 else (),
                        ),
                        window or HarvestWindow(),
                        mode,
                        run_id,
                        clock,
                        snapshot_date or clock.astimezone(UTC).date(),
                        gate,
                        board,
                        shard_hook,
                    )
                )
                for index, accounts in split_accounts(config.accounts, shards)
            ]
            try:
                pending = list(refs)
                while pending:
                    _, pending = await anyio.to_thread.run_sync(_wait, pending)
                    _show(counters, await anyio.to_thread.run_sync(ray.get, board.totals.remote()))
                reports: list[bytes] = await anyio.to_thread.run_sync(ray.get, refs)
            except BaseException:
                for ref in refs:
                    ray.cancel(ref, force=True)
                raise
            totals: dict[str, Any] = await anyio.to_thread.run_sync(ray.get, board.totals.remote())
            log.info(
                "app gate: %s", await anyio.to_thread.run_sync(ray.get, gate.statistics.remote())
            )
            for actor in (gate, board):
                ray.kill(actor)
        finally:
            if connected:
                ray.shutdown()
        lock.check()  # the shards wrote under this lock: settling them needs it still
        await anyio.to_thread.run_sync(_settle_lake, lake)
        report = _merge(
            [orjson.loads(r) for r in reports],
            run_id=run_id,
            api_version=config.graph.api_version,
            started=started,
            wall_seconds=round(time.perf_counter() - t0, 3),
            requests=totals["requests"],
        )
        await anyio.to_thread.run_sync(lake.put, layout.run_report(run_id), report.to_json())
    return report


def _wait(pending: list[Any]) -> tuple[list[Any], list[Any]]:
    """Wait until every shard is done, or for one progress tick."""
    return ray.wait(pending, num_returns=len(pending), timeout=PROGRESS_SECONDS)


def _settle_lake(lake: Lake) -> None:
    """What each run does before it starts and after it ends, done once for all the shards."""
    heal(lake, by="ray-driver")
    recover_compactions(lake)
    settle(lake)


def _show(counters: RunCounters, totals: dict[str, Any]) -> None:
    for key, value in totals.items():
        setattr(counters, key, value)


def _merge(
    shards: list[dict[str, Any]],
    *,
    run_id: str,
    api_version: str,
    started: datetime,
    wall_seconds: float,
    requests: int,
) -> RunReport:
    errors: Counter[str] = Counter()
    failed: dict[str, str] = {}
    uncatalogued: dict[str, set[str]] = {}
    for shard in shards:
        errors.update(shard["errors_by_code"])
        failed.update(shard["failed_accounts"])
        for kind, names in shard.get("uncatalogued_metrics", {}).items():
            uncatalogued.setdefault(kind, set()).update(names)
    return RunReport(
        run_id=run_id,
        api_version=api_version,
        started_at=started,
        finished_at=datetime.now(UTC),
        wall_seconds=wall_seconds,
        accounts_ok=sum(s["accounts_ok"] for s in shards),
        accounts_failed=sum(s["accounts_failed"] for s in shards),
        media_listed=sum(s["media_listed"] for s in shards),
        rows={d.value: sum(s["rows"].get(d.value, 0) for s in shards) for d in Dataset},
        files=sum(s["files"] for s in shards),
        errors_by_code=dict(errors),
        requests=requests,
        retries=sum(s["retries"] for s in shards),
        exit_code=max((s["exit_code"] for s in shards), default=0),
        failed_accounts=failed,
        uncatalogued_metrics={k: sorted(v) for k, v in sorted(uncatalogued.items())},
    )
