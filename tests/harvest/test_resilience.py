"""Faults, throttling and Meta's metric removals: the lake still ends up exactly right.

Each test harvests the same seeded world twice, once healthy and once under trouble, and compares
what real readers see in the two lakes.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from harvester.catalog import media_kind
from harvester.cli import demo_config
from harvester.config import parse_config
from harvester.harvest.pipeline import run_harvest
from harvester.harvest.report import RunReport
from harvester.harvest.routing import route
from harvester.models import Dataset
from harvester.simulator import FaultSettings, LimitSettings, SimulatorSettings, run_simulator
from harvester.simulator.validity import valid_media_metrics

pytestmark = pytest.mark.anyio

WORLD = {"seed": 21, "accounts": 4, "media_per_account": 40}
# Fast client knobs: short timeouts so stalls cost little, tiny backoffs so retries cost little.
# Media only: account insights have their own tests (tests/test_account_insights.py).
# Conditional metrics: no account stops asking them, as which media refuse them in a row depends
# on the order replies come back in, which faults and limits change.
FAST: dict[str, dict[str, Any]] = {
    "harvest": {"account_insights": False, "conditional_refusals_in_a_row": 1000},
    "graph": {"timeout_seconds": 0.5},
    "retry": {"max_attempts": 8, "base_delay_seconds": 0.01, "max_delay_seconds": 0.1},
    "limits": {"probe_seconds": 0.02, "probe_max_seconds": 0.5},
}


def read(lake: Path, dataset: Dataset) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        ds.dataset(lake / dataset.value, format="parquet", partitioning="hive")
        .to_table()
        .to_pylist()
    )
    return rows


def insight_set(lake: Path) -> set[tuple[Any, ...]]:
    rows = read(lake, Dataset.MEDIA_INSIGHTS)
    keyed = {(r["media_id"], r["metric"], r["breakdown"], r["value"]) for r in rows}
    assert len(keyed) == len(rows), "duplicate insight rows"
    return keyed


def error_set(lake: Path) -> Counter[tuple[Any, ...]]:
    """Error rows as a multiset (messages left out: some quote the time of the call)."""
    rows = read(lake, Dataset.ERRORS)
    return Counter((r["object_id"], r["stage"], r["error_code"], r["error_subcode"]) for r in rows)


async def harvest(
    sim_settings: SimulatorSettings,
    lake: Path,
    settings: dict[str, dict[str, Any]],
    version: str = "v25.0",
) -> tuple[RunReport, dict[str, Any], list[dict[str, Any]]]:
    async with run_simulator(sim_settings) as sim:
        info = {**sim.world_info(), "api_version": version}
        toml_text, kwargs = demo_config(info, lake, settings)
        report = await run_harvest(parse_config(toml_text, **kwargs))
        return report, sim.stats(), list(sim.request_log)


@pytest.mark.parametrize("batch_size", [50, 0])
async def test_faults_change_nothing_in_the_lake(tmp_path: Path, batch_size: int) -> None:
    faults = FaultSettings(
        server_error=0.05,
        truncated_json=0.02,
        dropped_connection=0.01,
        stall=0.01,
        html_error=0.04,
        batch_null=0.05,
        seed=3,
        stall_seconds=1.5,
    )
    settings = {**FAST, "harvest": {**FAST["harvest"], "batch_size": batch_size}}
    healthy, _, _ = await harvest(SimulatorSettings(**WORLD), tmp_path / "healthy", settings)
    faulty, stats, _ = await harvest(
        SimulatorSettings(**WORLD, faults=faults), tmp_path / "faulty", settings
    )

    kinds = {"server_error", "truncated_json", "html_error"} | (
        {"batch_null"} if batch_size else set()
    )
    assert set(stats["faults"]) >= kinds
    assert sum(stats["faults"].values()) > 20
    assert faulty.retries > 20
    assert insight_set(tmp_path / "faulty") == insight_set(tmp_path / "healthy")
    assert error_set(tmp_path / "faulty") == error_set(tmp_path / "healthy")
    assert faulty.rows == healthy.rows
    assert faulty.errors_by_code == healthy.errors_by_code


@pytest.mark.parametrize("scope", ["account", "app"])
async def test_a_rate_limit_storm_is_waited_out_never_called_into(
    tmp_path: Path, scope: str
) -> None:
    # Rates of 25 calls/s an account or 60 the app, over 2 s windows: each call is a small share
    # of its window, so the headroom between slowing down (75 %) and stopping (95 %) holds more
    # calls than are in flight even when a busy machine delays the replies that report usage
    # (over 1 s windows, 2 runs in 10 under two CPU burners sent a call into a block).
    budget = {"account_budget": 50} if scope == "account" else {"app_budget": 120}
    limits = LimitSettings(**budget, window_seconds=2.0, minute_seconds=0.1)
    world = {**WORLD, "media_per_account": 25}
    # The tiny budgets need in-flight caps below their headroom (25 % of the budget): with no header
    # seen yet, a wider burst overshoots before the first reply reports usage.
    caps = {"max_requests_per_account": 4, "max_requests_in_flight": 8}
    windows = {"account_window_seconds": 2.0, "app_window_seconds": 2.0}
    scaled = {**caps, **windows, "regain_unit_seconds": 0.1}
    settings = {**FAST, "limits": {**FAST["limits"], **scaled}}
    await harvest(SimulatorSettings(**world), tmp_path / "healthy", settings)
    _, stats, log = await harvest(
        SimulatorSettings(**world, limits=limits), tmp_path / "storm", settings
    )

    assert insight_set(tmp_path / "storm") == insight_set(tmp_path / "healthy")
    assert error_set(tmp_path / "storm") == error_set(tmp_path / "healthy")
    # The budget bound the run, yet nothing was sent into an account's known block. The app's
    # throttling error gives no regain time, so a few backoff probes may land inside its block.
    assert stats["rejected_while_blocked"] <= (0 if scope == "account" else 8)
    assert stats["calls_total"] > 2 * sum(budget.values())
    assert not stats["calls_after_190"]
    throttled = [e for e in log if e["error_code"] in (4, 17, 80002)]
    assert len(throttled) <= 4 * (1 if scope == "app" else world["accounts"])


async def test_an_expired_token_is_never_used_again(tmp_path: Path) -> None:
    report, stats, _ = await harvest(SimulatorSettings(**WORLD), tmp_path, FAST)
    (expired,) = report.failed_accounts
    assert report.failed_accounts[expired].startswith("TokenInvalid: ")
    assert not stats["calls_after_190"]
    assert report.exit_code == 3


async def test_a_dead_api_ends_the_run_with_a_report(tmp_path: Path) -> None:
    dead = SimulatorSettings(**WORLD, faults=FaultSettings(server_error=1.0, seed=1))
    settings = {**FAST, "retry": {**FAST["retry"], "max_attempts": 3, "run_budget": 5}}
    report, _, _ = await harvest(dead, tmp_path, settings)

    assert report.retries == 5
    errors = read(tmp_path, Dataset.ERRORS)
    assert (
        sorted((r["stage"], r["error_code"] in (1, 2)) for r in errors) == [("listing", True)] * 4
    )
    assert report.rows[Dataset.MEDIA_INSIGHTS.value] == 0
    assert report.exit_code == 3


@pytest.mark.parametrize("batch_size", [0, 10])
async def test_old_version_after_meta_removed_its_metrics(tmp_path: Path, batch_size: int) -> None:
    """A v17 config run today: Meta rejects the retired metrics, the harvest adapts and finishes.

    Each retired metric costs exactly one error per media kind: one media of a kind learns what
    Meta still accepts while the others of its kind wait, with 4 requests in flight or batches."""
    today = date(2026, 11, 29)
    settings = {
        **FAST,
        "limits": {**FAST["limits"], "max_requests_in_flight": 4},
        # Conditional metrics' expected refusals are code 100 too (see test_conditional.py).
        "harvest": {**FAST["harvest"], "batch_size": batch_size, "facebook_views": False},
    }
    sim = SimulatorSettings(**WORLD, as_of=today)
    report, _, log = await harvest(sim, tmp_path, settings, version="v17.0")

    async with run_simulator(sim) as running:
        world = running.world
    got = insight_set(tmp_path)
    errors = read(tmp_path, Dataset.ERRORS)
    routing_errors = {r["object_id"] for r in errors if r["stage"] == "routing"}
    for account in world.accounts:
        if account.token_expired:
            continue
        for media in [*world.iter_media(account.id), *world.stories(account.id)]:
            if media.trouble in ("pre_conversion", "deleted", "few_viewers"):
                continue
            # v17.0 expired on 2025-09-12: Meta serves the call as the oldest live version (v21.0
            # here), which accepts more than the v17 metrics the harvester asks.
            asked = route(media.media_type, media.media_product_type, "v17.0").metrics
            remaining = valid_media_metrics(
                "v17.0",
                media.media_type,
                media.media_product_type,
                as_of=today,
                created=media.timestamp,
            ) & set(asked)
            mine = {(m, b) for mid, m, b, _ in got if mid == media.id}
            assert {m for m, _ in mine} == set(remaining), media
            assert (media.id in routing_errors) == (not remaining)

    dropped = [r for r in errors if r["stage"] == "metric_unsupported"]
    assert dropped and all(r["error_code"] == 100 for r in dropped)
    planted = {
        m.id
        for a in world.accounts
        for m in world.iter_media(a.id)
        if m.trouble in ("deleted", "pre_conversion")
    }
    rejected = [e for e in log if e["error_code"] == 100 and e["object_id"] not in planted]
    assert len(rejected) == len(dropped)
    paid: Counter[tuple[Any, str]] = Counter()
    for row in dropped:
        media = world.media(row["object_id"])
        assert media is not None
        metric = row["message"].split()[1]  # "metric <name> dropped: ..."
        paid[(media_kind(media.media_type, media.media_product_type), metric)] += 1
    retired = set()
    for account in world.accounts:
        for media in [*world.iter_media(account.id), *world.stories(account.id)]:
            kind = media_kind(media.media_type, media.media_product_type)
            asked = route(media.media_type, media.media_product_type, "v17.0").metrics
            valid = valid_media_metrics(
                "v17.0", media.media_type, media.media_product_type, as_of=today, created=None
            )
            retired |= {(kind, metric) for metric in asked if metric not in valid}
    assert paid == Counter(dict.fromkeys(retired, 1))
    assert report.exit_code == 3
