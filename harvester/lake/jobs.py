"""Which job a run works on: its spec from the config, settling finished jobs, resume or begin.

Runs of one lake must not overlap: a second harvester on the same lake would take the first one's
uncommitted parts for orphans and harvest its units again. The caller holds the lake's lock
(`lake.lock`) around everything here, and passes its `check` as `guard`, so a writer that lost the
lock while stalled settles and begins nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Literal

from harvester.config import Config
from harvester.lake.checkpoint import Checkpoint, JobSpec, JobState, Mode, start_job
from harvester.lake.compact import recover_compactions
from harvester.lake.doctor import heal
from harvester.lake.fs import Lake
from harvester.lake.settle import settle
from harvester.lake.sweep import sweep_windows
from harvester.models import HarvestWindow

__all__ = ["MODES", "finish_job", "job_spec", "prepare_job"]

MODES: tuple[Literal["backfill"], Literal["sweep"]] = ("backfill", "sweep")


def job_spec(config: Config, window: HarvestWindow, mode: Mode, snapshot_date: date) -> JobSpec:
    """Everything that decides the job's output, and nothing that does not (limits, paths)."""
    harvest = config.harvest
    flags: dict[str, object] = {
        "stories": harvest.stories,
        "media_insights": harvest.media_insights,
        "account_insights": harvest.account_insights,
        "breakdowns": harvest.breakdowns,
    }
    if harvest.account_totals != "day":  # the default adds nothing: earlier jobs keep their id
        flags["account_totals"] = harvest.account_totals
    if not harvest.facebook_views:
        # Only when off: a job begun before the key existed keeps its key (and resumes).
        flags["facebook_views"] = False
    if config.competitors:  # only when there are: jobs begun before them keep their key
        flags["competitors"] = sorted(c.username for c in config.competitors)
        flags["competitor_media"] = harvest.competitor_media
    if mode == "sweep":
        flags["lookback_days"] = harvest.lookback_days
    return JobSpec(
        mode=mode,
        accounts=tuple(sorted(a.id for a in config.accounts)),
        api_version=config.graph.api_version,
        since=_iso(window.since),
        until=_iso(window.until),
        harvest=tuple(sorted(flags.items())),
        snapshot_date=snapshot_date.isoformat() if mode == "sweep" else None,
    )


def prepare_job(
    lake: Lake,
    config: Config,
    window: HarvestWindow,
    *,
    mode: Mode,
    run_id: str,
    clock: datetime,
    snapshot_date: date,
    shard: bool = False,
    guard: Callable[[], None] = lambda: None,
) -> JobState:
    """Heal damaged files (`lake.doctor`), settle what earlier runs finished, then resume this
    spec's unfinished job or begin one.

    A resumed job keeps its own clock, snapshot date and sweep windows, so what it still asks is
    exactly what the interrupted run would have asked. A `shard` (one of several runs working on
    the lake side by side, `harvest.ray_engine`) settles nothing and touches no other job: its
    driver settles before and after.
    """
    if mode == "sweep" and (window.since is not None or window.until is not None):
        raise ValueError("a sweep takes no --since/--until: its windows come from the lake")
    guard()
    if not shard:
        heal(lake, by=run_id, dates=[snapshot_date.isoformat()])
        recover_compactions(lake)
        settle(lake)
        guard()
    spec = job_spec(config, window, mode, snapshot_date)
    lookback = config.harvest.lookback_days
    return start_job(
        lake,
        spec,
        run_id,
        clock=clock,
        snapshot_date=snapshot_date,
        windows=lambda: (
            sweep_windows(lake, spec.accounts, snapshot_date, lookback) if mode == "sweep" else {}
        ),
        isolated=shard,
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def finish_job(lake: Lake, checkpoint: Checkpoint, *, shard: bool = False) -> None:
    """Mark the job done, then settle it (a shard's driver settles all shards at the end):
    supersede older rows of its date, advance the cursor."""
    checkpoint.finish()
    if not shard:
        settle(lake, finished=checkpoint.state)
